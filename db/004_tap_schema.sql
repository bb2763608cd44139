-- TAP 1.1 TAP_SCHEMA. Filled by the catalog loader from the manifests, and describing itself.
CREATE SCHEMA IF NOT EXISTS tap_schema AUTHORIZATION starbox_owner;
GRANT USAGE ON SCHEMA tap_schema TO starbox_public;

CREATE TABLE IF NOT EXISTS tap_schema.schemas (
    schema_name   varchar(64) PRIMARY KEY,
    utype         varchar(512),
    description   varchar(4096),
    schema_index  integer
);
CREATE TABLE IF NOT EXISTS tap_schema.tables (
    schema_name   varchar(64) NOT NULL REFERENCES tap_schema.schemas (schema_name) ON DELETE CASCADE,
    table_name    varchar(128) PRIMARY KEY,
    table_type    varchar(8) NOT NULL DEFAULT 'table',
    utype         varchar(512),
    description   varchar(4096),
    table_index   integer
);
CREATE TABLE IF NOT EXISTS tap_schema.columns (
    table_name    varchar(128) NOT NULL REFERENCES tap_schema.tables (table_name) ON DELETE CASCADE,
    column_name   varchar(64) NOT NULL,
    utype         varchar(512),
    ucd           varchar(64),
    unit          varchar(64),
    description   varchar(4096),
    datatype      varchar(64) NOT NULL,
    arraysize     varchar(16),
    xtype         varchar(64),
    "size"        integer,
    principal     integer NOT NULL DEFAULT 0,
    indexed       integer NOT NULL DEFAULT 0,
    std           integer NOT NULL DEFAULT 0,
    column_index  integer,
    PRIMARY KEY (table_name, column_name)
);
CREATE TABLE IF NOT EXISTS tap_schema.keys (
    key_id        varchar(64) PRIMARY KEY,
    from_table    varchar(128) NOT NULL REFERENCES tap_schema.tables (table_name) ON DELETE CASCADE,
    target_table  varchar(128) NOT NULL REFERENCES tap_schema.tables (table_name) ON DELETE CASCADE,
    utype         varchar(512),
    description   varchar(4096)
);
CREATE TABLE IF NOT EXISTS tap_schema.key_columns (
    key_id        varchar(64) NOT NULL REFERENCES tap_schema.keys (key_id) ON DELETE CASCADE,
    from_column   varchar(64) NOT NULL,
    target_column varchar(64) NOT NULL
);

DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['schemas', 'tables', 'columns', 'keys', 'key_columns'] LOOP
    EXECUTE format('ALTER TABLE tap_schema.%I OWNER TO starbox_owner', t);
    EXECUTE format('GRANT SELECT ON tap_schema.%I TO starbox_public', t);
  END LOOP;
END
$$;

-- TAP_SCHEMA describes itself (TAP 1.1 section 4).
INSERT INTO tap_schema.schemas VALUES
  ('tap_schema', NULL, 'Metadata of the tables and columns this TAP service publishes', 100000)
ON CONFLICT (schema_name) DO NOTHING;
INSERT INTO tap_schema.tables VALUES
  ('tap_schema', 'tap_schema.schemas', 'table', NULL, 'Schemas published by this service', 1),
  ('tap_schema', 'tap_schema.tables', 'table', NULL, 'Tables published by this service', 2),
  ('tap_schema', 'tap_schema.columns', 'table', NULL, 'Columns of the published tables', 3),
  ('tap_schema', 'tap_schema.keys', 'table', NULL, 'Foreign keys between published tables', 4),
  ('tap_schema', 'tap_schema.key_columns', 'table', NULL, 'Columns of the foreign keys', 5)
ON CONFLICT (table_name) DO NOTHING;
INSERT INTO tap_schema.columns
  (table_name, column_name, description, datatype, arraysize, principal, indexed, std, column_index) VALUES
  ('tap_schema.schemas', 'schema_name', 'Schema name, for reference to tap_schema.tables', 'char', '64*', 1, 1, 1, 1),
  ('tap_schema.schemas', 'utype', 'UType of the schema', 'char', '512*', 0, 0, 1, 2),
  ('tap_schema.schemas', 'description', 'Description of the schema', 'char', '4096*', 1, 0, 1, 3),
  ('tap_schema.schemas', 'schema_index', 'Recommended sort order when listing schemas', 'int', NULL, 0, 0, 1, 4),
  ('tap_schema.tables', 'schema_name', 'Name of the schema the table belongs to', 'char', '64*', 1, 0, 1, 1),
  ('tap_schema.tables', 'table_name', 'Fully qualified table name', 'char', '128*', 1, 1, 1, 2),
  ('tap_schema.tables', 'table_type', 'One of: table, view', 'char', '8*', 1, 0, 1, 3),
  ('tap_schema.tables', 'utype', 'UType of the table', 'char', '512*', 0, 0, 1, 4),
  ('tap_schema.tables', 'description', 'Description of the table', 'char', '4096*', 1, 0, 1, 5),
  ('tap_schema.tables', 'table_index', 'Recommended sort order when listing tables', 'int', NULL, 0, 0, 1, 6),
  ('tap_schema.columns', 'table_name', 'Fully qualified name of the table the column is in', 'char', '128*', 1, 1, 1, 1),
  ('tap_schema.columns', 'column_name', 'Column name', 'char', '64*', 1, 0, 1, 2),
  ('tap_schema.columns', 'utype', 'UType of the column', 'char', '512*', 0, 0, 1, 3),
  ('tap_schema.columns', 'ucd', 'UCD of the column', 'char', '64*', 0, 0, 1, 4),
  ('tap_schema.columns', 'unit', 'Unit in VO standard format', 'char', '64*', 0, 0, 1, 5),
  ('tap_schema.columns', 'description', 'Description of the column', 'char', '4096*', 1, 0, 1, 6),
  ('tap_schema.columns', 'datatype', 'ADQL datatype (VOTable datatype in TAP 1.1)', 'char', '64*', 1, 0, 1, 7),
  ('tap_schema.columns', 'arraysize', 'VOTable arraysize', 'char', '16*', 0, 0, 1, 8),
  ('tap_schema.columns', 'xtype', 'VOTable xtype', 'char', '64*', 0, 0, 1, 9),
  ('tap_schema.columns', '"size"', 'Length of variable length datatypes (deprecated)', 'int', NULL, 0, 0, 1, 10),
  ('tap_schema.columns', 'principal', 'A principal column; 1 means true, 0 false', 'int', NULL, 0, 0, 1, 11),
  ('tap_schema.columns', 'indexed', 'An indexed column; 1 means true, 0 false', 'int', NULL, 0, 0, 1, 12),
  ('tap_schema.columns', 'std', 'A standard column; 1 means true, 0 false', 'int', NULL, 0, 0, 1, 13),
  ('tap_schema.columns', 'column_index', 'Recommended sort order when listing columns', 'int', NULL, 0, 0, 1, 14),
  ('tap_schema.keys', 'key_id', 'Unique key identifier', 'char', '64*', 1, 1, 1, 1),
  ('tap_schema.keys', 'from_table', 'Fully qualified table name', 'char', '128*', 1, 0, 1, 2),
  ('tap_schema.keys', 'target_table', 'Fully qualified table name', 'char', '128*', 1, 0, 1, 3),
  ('tap_schema.keys', 'utype', 'UType of the key', 'char', '512*', 0, 0, 1, 4),
  ('tap_schema.keys', 'description', 'Description of the key', 'char', '4096*', 1, 0, 1, 5),
  ('tap_schema.key_columns', 'key_id', 'Key identifier from tap_schema.keys', 'char', '64*', 1, 1, 1, 1),
  ('tap_schema.key_columns', 'from_column', 'Column name in the from_table', 'char', '64*', 1, 0, 1, 2),
  ('tap_schema.key_columns', 'target_column', 'Column name in the target_table', 'char', '64*', 1, 0, 1, 3)
ON CONFLICT (table_name, column_name) DO NOTHING;
