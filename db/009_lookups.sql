-- Catalog look-ups the service makes again and again (issue 12, item 2): which relations a schema
-- holds, a table's columns, how many bytes a schema takes. They were written as
-- pg_class ⋈ pg_namespace in seven places; these views are the one spelling. They show nothing
-- pg_class does not already show every role (db/008_catalog_privacy.sql keeps pg_class open,
-- since MyDB listing runs as the user), so starbox_public may read them.
CREATE SCHEMA IF NOT EXISTS starbox_lookup AUTHORIZATION starbox_owner;
GRANT USAGE ON SCHEMA starbox_lookup TO starbox_public, starbox_service;

-- Every relation with its schema; kind is pg_class.relkind ('r' table, 'p' partitioned,
-- 'v' view, 'm' materialized view, 'f' foreign table, 'i' index, 'S' sequence, ...).
CREATE OR REPLACE VIEW starbox_lookup.relations AS
SELECT n.nspname AS schema_name, c.relname AS name, c.relkind AS kind, c.oid AS oid,
       c.relispartition AS is_partition, c.reltuples AS row_estimate,
       obj_description(c.oid, 'pg_class') AS comment
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace;

-- The live columns of each relation, in order.
CREATE OR REPLACE VIEW starbox_lookup.columns AS
SELECT r.schema_name, r.name AS table_name, a.attname AS name, a.attnum AS position
  FROM starbox_lookup.relations r JOIN pg_catalog.pg_attribute a ON a.attrelid = r.oid
 WHERE a.attnum > 0 AND NOT a.attisdropped;

-- Bytes held by each schema's tables and materialized views, indexes and TOAST included: what
-- the MyDB quota counts. A filter on schema_name reaches pg_class before the sum.
CREATE OR REPLACE VIEW starbox_lookup.schema_bytes AS
SELECT schema_name, sum(pg_total_relation_size(oid))::bigint AS bytes
  FROM starbox_lookup.relations WHERE kind IN ('r', 'm') GROUP BY schema_name;

ALTER VIEW starbox_lookup.relations OWNER TO starbox_owner;
ALTER VIEW starbox_lookup.columns OWNER TO starbox_owner;
ALTER VIEW starbox_lookup.schema_bytes OWNER TO starbox_owner;
GRANT SELECT ON starbox_lookup.relations, starbox_lookup.columns, starbox_lookup.schema_bytes
  TO starbox_public, starbox_service;
