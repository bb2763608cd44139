-- The roles of the security model (DESIGN.md): the database, not string checks, enforces isolation.
--   starbox_owner    NOLOGIN; owns every catalog schema and table.
--   starbox_public   NOLOGIN; may read the public catalogs. Anonymous queries run as this role.
--   starbox_users    NOLOGIN; every user role is a member, and inherits starbox_public's reads.
--   starbox_service  LOGIN NOINHERIT; the service's login. Member of each user role, reaches them
--                    only with SET LOCAL ROLE (its password is set by `starbox up`).
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'starbox_owner') THEN
    CREATE ROLE starbox_owner NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'starbox_public') THEN
    CREATE ROLE starbox_public NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'starbox_users') THEN
    CREATE ROLE starbox_users NOLOGIN IN ROLE starbox_public;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'starbox_service') THEN
    CREATE ROLE starbox_service LOGIN NOINHERIT;
  END IF;
END
$$;
GRANT starbox_public TO starbox_service;

-- Nobody but the owners creates objects in public; users get their own MyDB schema.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO starbox_public;
DO $$
BEGIN
  EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO starbox_service, starbox_public', current_database());
END
$$;

-- Server-side file and program access is for superusers only; make sure no grant opened it.
REVOKE EXECUTE ON FUNCTION pg_read_file(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pg_read_binary_file(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pg_ls_dir(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION lo_import(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION lo_export(oid, text) FROM PUBLIC;
