-- TAP_SCHEMA shows each user their own MyDB tables, as schema `mydb` (the ADQL name of MyDB,
-- `mydb.t`), so TOPCAT's table browser and a user's own TAP_SCHEMA queries list them; nobody
-- else sees them (issue 15, item 6). The published rows the catalog loader writes move to
-- tap_schema.published_{schemas,tables,columns}; tap_schema.schemas, .tables and .columns
-- become views of those plus the caller's MyDB. A user's SQL runs as its own role
-- (starbox_u_<name>), so current_user says whose MyDB that is; anonymous callers and the
-- service's own connections see the published rows alone. Idempotent, like every migration.

DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['schemas', 'tables', 'columns'] LOOP
    IF to_regclass('tap_schema.published_' || t) IS NULL THEN
      EXECUTE format('ALTER TABLE tap_schema.%I RENAME TO %I', t, 'published_' || t);
    END IF;
  END LOOP;
END
$$;

-- The caller's MyDB schema, or NULL (anonymous, the service's roles, no MyDB).
CREATE OR REPLACE FUNCTION tap_schema.caller_mydb() RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT s FROM (SELECT 'mydb_' || substr(current_user, length('starbox_u_') + 1) AS s) x
   WHERE current_user LIKE 'starbox\_u\_%' AND to_regnamespace(s) IS NOT NULL
$$;

-- The VOTable datatype, arraysize and xtype (TAP 1.1 TAP_SCHEMA.columns) of a PostgreSQL type:
-- the one mapping, for the loader's catalog columns and for MyDB's.
CREATE OR REPLACE FUNCTION tap_schema.votable_type(t regtype, OUT datatype text, OUT arraysize text, OUT xtype text)
LANGUAGE sql STABLE AS $$
  WITH e AS (
    SELECT format_type(CASE WHEN ty.typcategory = 'A' THEN ty.typelem ELSE ty.oid END, NULL) AS base,
           ty.typcategory = 'A' AS is_array
      FROM pg_catalog.pg_type ty WHERE ty.oid = t
  ), m AS (
    SELECT CASE base WHEN 'smallint' THEN 'short' WHEN 'integer' THEN 'int' WHEN 'bigint' THEN 'long'
                     WHEN 'real' THEN 'float' WHEN 'double precision' THEN 'double' WHEN 'numeric' THEN 'double'
                     WHEN 'boolean' THEN 'boolean' END AS numeric_type, base, is_array FROM e
  )
  SELECT coalesce(numeric_type, 'char'),
         CASE WHEN is_array OR numeric_type IS NULL THEN '*' END,
         CASE WHEN base IN ('date', 'timestamp without time zone', 'timestamp with time zone') THEN 'timestamp' END
    FROM m
$$;

CREATE OR REPLACE VIEW tap_schema.schemas AS
SELECT schema_name, utype, description, schema_index FROM tap_schema.published_schemas
UNION ALL
SELECT 'mydb', NULL, 'Your own tables (MyDB): only you see them; mydb.t names one in ADQL', 1000000
 WHERE tap_schema.caller_mydb() IS NOT NULL;

CREATE OR REPLACE VIEW tap_schema.tables AS
SELECT schema_name, table_name, table_type, utype, description, table_index FROM tap_schema.published_tables
UNION ALL
SELECT 'mydb', 'mydb.' || r.name, CASE WHEN r.kind IN ('v', 'm') THEN 'view' ELSE 'table' END, NULL,
       -- starbox.mydb tags the tables it makes with their time of making (starbox:created=<ISO time>)
       CASE WHEN r.comment LIKE 'starbox:created=%'
            THEN 'MyDB table made ' || left(replace(substr(r.comment, 17), 'T', ' '), 16)
            ELSE r.comment END,
       NULL
  FROM starbox_lookup.relations r
 WHERE r.schema_name = tap_schema.caller_mydb() AND r.kind IN ('r', 'p', 'v', 'm') AND NOT r.is_partition;

CREATE OR REPLACE VIEW tap_schema.columns AS
SELECT table_name, column_name, utype, ucd, unit, description, datatype, arraysize, xtype, "size",
       principal, indexed, std, column_index
  FROM tap_schema.published_columns
UNION ALL
SELECT 'mydb.' || r.name, a.attname, NULL, NULL, NULL, col_description(r.oid, a.attnum),
       v.datatype, v.arraysize, v.xtype, NULL, 0,
       CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = r.oid AND a.attnum = ANY (i.indkey))
            THEN 1 ELSE 0 END,
       0, a.attnum
  FROM starbox_lookup.relations r
  JOIN pg_catalog.pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
  CROSS JOIN LATERAL tap_schema.votable_type(a.atttypid::regtype) v
 WHERE r.schema_name = tap_schema.caller_mydb() AND r.kind IN ('r', 'p', 'v', 'm') AND NOT r.is_partition;

DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['schemas', 'tables', 'columns', 'published_schemas', 'published_tables',
                           'published_columns'] LOOP
    EXECUTE format('ALTER TABLE tap_schema.%I OWNER TO starbox_owner', t);
  END LOOP;
  FOREACH t IN ARRAY ARRAY['schemas', 'tables', 'columns'] LOOP
    EXECUTE format('GRANT SELECT ON tap_schema.%I TO starbox_public', t);
  END LOOP;
END
$$;
ALTER FUNCTION tap_schema.caller_mydb() OWNER TO starbox_owner;
ALTER FUNCTION tap_schema.votable_type(regtype) OWNER TO starbox_owner;
