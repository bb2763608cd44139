-- Service state: accounts, tokens and jobs, readable and writable only by the service's login.
--
-- User SQL never runs as starbox_service. Each user has a LOGIN role of its own, and the service
-- opens that user's connections as that role, so RESET ROLE or set_config('role', ...) inside a
-- user's SQL lands back on the user, never on a role with more rights (see starbox/accounts.py).
-- Anonymous queries log in as starbox_anon, which can only read the public catalogs.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'starbox_anon') THEN
    CREATE ROLE starbox_anon LOGIN IN ROLE starbox_public;
  END IF;
END
$$;
ALTER ROLE starbox_anon SET statement_timeout = '600s';
DO $$
BEGIN
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO starbox_anon, starbox_users', current_database());
  EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO starbox_users', current_database());
END
$$;

CREATE SCHEMA IF NOT EXISTS starbox AUTHORIZATION starbox_service;
REVOKE ALL ON SCHEMA starbox FROM PUBLIC;

CREATE TABLE IF NOT EXISTS starbox.accounts (
    username       text PRIMARY KEY,
    uid            integer NOT NULL UNIQUE,
    password_hash  text NOT NULL,
    disabled       boolean NOT NULL DEFAULT false,
    created        timestamptz NOT NULL DEFAULT now(),
    password_set   timestamptz NOT NULL DEFAULT now()
);
CREATE SEQUENCE IF NOT EXISTS starbox.account_uid START 1001;

-- Only a SHA-256 of the token's random secret is kept.
CREATE TABLE IF NOT EXISTS starbox.tokens (
    secret_sha256  text PRIMARY KEY,
    username       text NOT NULL REFERENCES starbox.accounts (username) ON DELETE CASCADE,
    created        timestamptz NOT NULL DEFAULT now(),
    expires        timestamptz NOT NULL,
    revoked        boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS tokens_username_idx ON starbox.tokens (username);

-- Query jobs of the Data Lab API and of TAP (UWS), side by side.
CREATE TABLE IF NOT EXISTS starbox.jobs (
    jobid          text PRIMARY KEY,
    owner          text NOT NULL,              -- username, or 'anonymous'
    kind           text NOT NULL DEFAULT 'datalab',
    phase          text NOT NULL DEFAULT 'QUEUED',
    query          text NOT NULL,
    lang           text NOT NULL DEFAULT 'sql',
    ofmt           text NOT NULL DEFAULT 'csv',
    out_uri        text,
    params         jsonb NOT NULL DEFAULT '{}',
    timeout_s      integer NOT NULL DEFAULT 300,
    created        timestamptz NOT NULL DEFAULT now(),
    started        timestamptz,
    finished       timestamptz,
    destruction    timestamptz NOT NULL DEFAULT now() + interval '7 days',
    result_path    text,
    result_rows    bigint,
    error          text
);
CREATE INDEX IF NOT EXISTS jobs_owner_idx ON starbox.jobs (owner, created);
CREATE INDEX IF NOT EXISTS jobs_phase_idx ON starbox.jobs (phase);

DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['accounts', 'tokens', 'jobs'] LOOP
    EXECUTE format('ALTER TABLE starbox.%I OWNER TO starbox_service', t);
  END LOOP;
END
$$;
ALTER SEQUENCE starbox.account_uid OWNER TO starbox_service;
