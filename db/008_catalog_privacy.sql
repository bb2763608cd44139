-- Catalog privacy (issue 11, items 10 and 7): PostgreSQL lets every role read the whole catalog,
-- so each MyDB's metadata, function source, the account list and who is connected were readable
-- by every user and anonymously. Revoke what can be revoked without breaking what the service
-- does as the caller: pg_class, pg_namespace, pg_attribute, pg_description, pg_indexes and the
-- information_schema stay (MyDB listing and TAP look-ups run as the user or as starbox_anon;
-- information_schema filters by privilege itself). The README's security section says what
-- remains visible. Superusers are not affected; every statement is idempotent.

-- Who is connected, from where, running what.
REVOKE SELECT ON pg_catalog.pg_stat_activity FROM PUBLIC;
DO $$
DECLARE f regprocedure;
BEGIN
  FOR f IN SELECT oid::regprocedure FROM pg_proc
           WHERE pronamespace = 'pg_catalog'::regnamespace
             AND (proname LIKE 'pg\_stat\_get\_backend\_%' OR proname IN ('pg_stat_get_activity', 'pg_stat_get_progress_info'))
  LOOP
    EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
  END LOOP;
END
$$;
-- Everyone who shares a role (every anonymous caller, and the metadata connections) could
-- cancel or end each other's queries.
REVOKE EXECUTE ON FUNCTION pg_catalog.pg_cancel_backend(integer) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pg_catalog.pg_terminate_backend(integer, bigint) FROM PUBLIC;

-- The account list: role names, memberships and per-role settings (pg_authid is closed already).
REVOKE SELECT ON pg_catalog.pg_roles, pg_catalog.pg_user, pg_catalog.pg_group,
                 pg_catalog.pg_auth_members, pg_catalog.pg_db_role_setting FROM PUBLIC;

-- Function source: every column of pg_proc but the source, and no functiondef.
DO $$
DECLARE cols text;
BEGIN
  SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO cols FROM pg_attribute
   WHERE attrelid = 'pg_catalog.pg_proc'::regclass AND attnum > 0 AND NOT attisdropped
     AND attname NOT IN ('prosrc', 'probin', 'prosqlbody', 'proconfig');
  REVOKE SELECT ON pg_catalog.pg_proc FROM PUBLIC;
  EXECUTE format('GRANT SELECT (%s) ON pg_catalog.pg_proc TO PUBLIC', cols);
END
$$;
REVOKE EXECUTE ON FUNCTION pg_catalog.pg_get_functiondef(oid) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pg_catalog.pg_get_function_sqlbody(oid) FROM PUBLIC;

-- Session settings belong to the service, which sets them per query (statement_timeout):
-- set_config() and UPDATE pg_settings (a SET in disguise) are closed; SET itself is refused by
-- the statement guard (starbox/query/guard.py). current_setting() stays.
REVOKE EXECUTE ON FUNCTION pg_catalog.set_config(text, text, boolean) FROM PUBLIC;
REVOKE UPDATE ON pg_catalog.pg_settings FROM PUBLIC;

-- Large objects (item 7): nobody but the admin creates or writes them; they live outside every
-- schema and quota. Reading (lo_open, loread, lo_get) and unlinking one's own stay.
REVOKE EXECUTE ON FUNCTION pg_catalog.lo_from_bytea(oid, bytea), pg_catalog.lo_create(oid),
                           pg_catalog.lo_creat(integer), pg_catalog.lo_import(text),
                           pg_catalog.lo_import(text, oid), pg_catalog.lo_put(oid, bigint, bytea),
                           pg_catalog.lowrite(integer, bytea), pg_catalog.lo_truncate(integer, integer),
                           pg_catalog.lo_truncate64(integer, bigint) FROM PUBLIC;
-- Large objects anonymous callers made before this migration are nobody's data.
SELECT pg_catalog.lo_unlink(oid) FROM pg_catalog.pg_largeobject_metadata
 WHERE lomowner = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = 'starbox_anon');
