-- TAP: the ADQL functions PostgreSQL and pgsphere lack, and an empty ivoa.ObsCore.
--
-- queryparser passes some ADQL functions through by name (COORD1, COORD2, COORDSYS, CENTROID,
-- and square_degrees() around AREA); these give them their ADQL meaning (degrees, as ADQL says).
-- ROUND and TRUNCATE of a double with a number of digits exist in PostgreSQL only for numeric.
CREATE OR REPLACE FUNCTION public.coord1(p spoint) RETURNS double precision
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS 'SELECT degrees(long(p))';
CREATE OR REPLACE FUNCTION public.coord2(p spoint) RETURNS double precision
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS 'SELECT degrees(lat(p))';
CREATE OR REPLACE FUNCTION public.coordsys(p spoint) RETURNS text
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS 'SELECT ''ICRS''::text';
CREATE OR REPLACE FUNCTION public.centroid(c scircle) RETURNS spoint
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS 'SELECT center(c)';
CREATE OR REPLACE FUNCTION public.square_degrees(steradians double precision) RETURNS double precision
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS 'SELECT steradians * (180.0 / pi()) ^ 2';
CREATE OR REPLACE FUNCTION public.round(x double precision, digits integer) RETURNS double precision
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS 'SELECT round(x::numeric, digits)::double precision';
CREATE OR REPLACE FUNCTION public.trunc(x double precision, digits integer) RETURNS double precision
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS 'SELECT trunc(x::numeric, digits)::double precision';
CREATE OR REPLACE FUNCTION public.mod(x double precision, y double precision) RETURNS double precision
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS 'SELECT x - y * trunc(x / y)';
DO $$
DECLARE f text;
BEGIN
  FOREACH f IN ARRAY ARRAY['coord1(spoint)', 'coord2(spoint)', 'coordsys(spoint)', 'centroid(scircle)',
                           'square_degrees(double precision)', 'round(double precision, integer)',
                           'trunc(double precision, integer)', 'mod(double precision, double precision)'] LOOP
    EXECUTE format('ALTER FUNCTION public.%s OWNER TO starbox_owner', f);
  END LOOP;
END
$$;

-- ObsCore 1.1 (ivoa.ObsCore): none of the sample catalogs is an observation collection, so the
-- table stays empty; it is there, with the standard's columns, for clients and for later data.
CREATE SCHEMA IF NOT EXISTS ivoa AUTHORIZATION starbox_owner;
GRANT USAGE ON SCHEMA ivoa TO starbox_public;
CREATE TABLE IF NOT EXISTS ivoa.obscore (
    dataproduct_type  text,
    calib_level       integer NOT NULL,
    obs_collection    text NOT NULL,
    obs_id            text NOT NULL,
    obs_publisher_did text NOT NULL,
    access_url        text,
    access_format     text,
    access_estsize    bigint,
    target_name       text,
    s_ra              double precision,
    s_dec             double precision,
    s_fov             double precision,
    s_region          text,
    s_resolution      double precision,
    s_xel1            bigint,
    s_xel2            bigint,
    t_min             double precision,
    t_max             double precision,
    t_exptime         double precision,
    t_resolution      double precision,
    t_xel             bigint,
    em_min            double precision,
    em_max            double precision,
    em_res_power      double precision,
    em_xel            bigint,
    o_ucd             text,
    pol_states        text,
    pol_xel           bigint,
    facility_name     text,
    instrument_name   text
);
ALTER TABLE ivoa.obscore OWNER TO starbox_owner;
GRANT SELECT ON ivoa.obscore TO starbox_public;

INSERT INTO tap_schema.schemas (schema_name, description, schema_index) VALUES
  ('ivoa', 'IVOA standard tables: ObsCore 1.1 (empty: no sample catalog is an observation collection)', 99000)
ON CONFLICT (schema_name) DO NOTHING;
INSERT INTO tap_schema.tables (schema_name, table_name, table_type, utype, description, table_index) VALUES
  ('ivoa', 'ivoa.obscore', 'table', 'ivo://ivoa.net/std/obscore#table-1.1',
   'ObsCore 1.1 observation metadata (empty on this appliance)', 99000)
ON CONFLICT (table_name) DO NOTHING;
INSERT INTO tap_schema.columns
  (table_name, column_name, utype, ucd, unit, description, datatype, arraysize, xtype, principal, indexed, std, column_index)
VALUES
  ('ivoa.obscore', 'dataproduct_type', 'obscore:ObsDataset.dataProductType', 'meta.code.class', NULL, 'Data product type: image, cube, spectrum, sed, timeseries, visibility, event or measurements', 'char', '*', NULL, 1, 0, 1, 1),
  ('ivoa.obscore', 'calib_level', 'obscore:ObsDataset.calibLevel', 'meta.code;obs.calib', NULL, 'Calibration level, 0 to 4', 'int', NULL, NULL, 1, 0, 1, 2),
  ('ivoa.obscore', 'obs_collection', 'obscore:DataID.Collection', 'meta.id', NULL, 'Name of the data collection', 'char', '*', NULL, 1, 0, 1, 3),
  ('ivoa.obscore', 'obs_id', 'obscore:DataID.observationID', 'meta.id', NULL, 'Observation identifier', 'char', '*', NULL, 1, 0, 1, 4),
  ('ivoa.obscore', 'obs_publisher_did', 'obscore:Curation.PublisherDID', 'meta.ref.ivoid', NULL, 'Dataset identifier given by the publisher', 'char', '*', NULL, 1, 1, 1, 5),
  ('ivoa.obscore', 'access_url', 'obscore:Access.Reference', 'meta.ref.url', NULL, 'URL to download the data', 'char', '*', NULL, 1, 0, 1, 6),
  ('ivoa.obscore', 'access_format', 'obscore:Access.Format', 'meta.code.mime', NULL, 'Content format of the data', 'char', '*', NULL, 1, 0, 1, 7),
  ('ivoa.obscore', 'access_estsize', 'obscore:Access.Size', 'phys.size;meta.file', 'kbyte', 'Estimated size of the download', 'long', NULL, NULL, 1, 0, 1, 8),
  ('ivoa.obscore', 'target_name', 'obscore:Target.Name', 'meta.id;src', NULL, 'Object of interest', 'char', '*', NULL, 1, 0, 1, 9),
  ('ivoa.obscore', 's_ra', 'obscore:Char.SpatialAxis.Coverage.Location.Coord.Position2D.Value2.C1', 'pos.eq.ra', 'deg', 'Central right ascension, ICRS', 'double', NULL, NULL, 1, 1, 1, 10),
  ('ivoa.obscore', 's_dec', 'obscore:Char.SpatialAxis.Coverage.Location.Coord.Position2D.Value2.C2', 'pos.eq.dec', 'deg', 'Central declination, ICRS', 'double', NULL, NULL, 1, 1, 1, 11),
  ('ivoa.obscore', 's_fov', 'obscore:Char.SpatialAxis.Coverage.Bounds.Extent.diameter', 'phys.angSize;instr.fov', 'deg', 'Diameter of the covered region', 'double', NULL, NULL, 1, 0, 1, 12),
  ('ivoa.obscore', 's_region', 'obscore:Char.SpatialAxis.Coverage.Support.Area', 'pos.outline;obs.field', NULL, 'Sky region covered by the data product', 'char', '*', 'adql:REGION', 1, 0, 1, 13),
  ('ivoa.obscore', 's_resolution', 'obscore:Char.SpatialAxis.Resolution.Refval.value', 'pos.angResolution', 'arcsec', 'Spatial resolution (FWHM)', 'double', NULL, NULL, 1, 0, 1, 14),
  ('ivoa.obscore', 's_xel1', 'obscore:Char.SpatialAxis.numBins1', 'meta.number', NULL, 'Number of elements along the first spatial axis', 'long', NULL, NULL, 1, 0, 1, 15),
  ('ivoa.obscore', 's_xel2', 'obscore:Char.SpatialAxis.numBins2', 'meta.number', NULL, 'Number of elements along the second spatial axis', 'long', NULL, NULL, 1, 0, 1, 16),
  ('ivoa.obscore', 't_min', 'obscore:Char.TimeAxis.Coverage.Bounds.Limits.StartTime', 'time.start;obs.exposure', 'd', 'Start time, MJD', 'double', NULL, NULL, 1, 0, 1, 17),
  ('ivoa.obscore', 't_max', 'obscore:Char.TimeAxis.Coverage.Bounds.Limits.StopTime', 'time.end;obs.exposure', 'd', 'Stop time, MJD', 'double', NULL, NULL, 1, 0, 1, 18),
  ('ivoa.obscore', 't_exptime', 'obscore:Char.TimeAxis.Coverage.Support.Extent', 'time.duration;obs.exposure', 's', 'Total exposure time', 'double', NULL, NULL, 1, 0, 1, 19),
  ('ivoa.obscore', 't_resolution', 'obscore:Char.TimeAxis.Resolution.Refval.value', 'time.resolution', 's', 'Temporal resolution', 'double', NULL, NULL, 1, 0, 1, 20),
  ('ivoa.obscore', 't_xel', 'obscore:Char.TimeAxis.numBins', 'meta.number', NULL, 'Number of elements along the time axis', 'long', NULL, NULL, 1, 0, 1, 21),
  ('ivoa.obscore', 'em_min', 'obscore:Char.SpectralAxis.Coverage.Bounds.Limits.LoLimit', 'em.wl;stat.min', 'm', 'Start in spectral coordinates (vacuum wavelength)', 'double', NULL, NULL, 1, 0, 1, 22),
  ('ivoa.obscore', 'em_max', 'obscore:Char.SpectralAxis.Coverage.Bounds.Limits.HiLimit', 'em.wl;stat.max', 'm', 'Stop in spectral coordinates (vacuum wavelength)', 'double', NULL, NULL, 1, 0, 1, 23),
  ('ivoa.obscore', 'em_res_power', 'obscore:Char.SpectralAxis.Resolution.ResolPower.refVal', 'spect.resolution', NULL, 'Spectral resolving power', 'double', NULL, NULL, 1, 0, 1, 24),
  ('ivoa.obscore', 'em_xel', 'obscore:Char.SpectralAxis.numBins', 'meta.number', NULL, 'Number of elements along the spectral axis', 'long', NULL, NULL, 1, 0, 1, 25),
  ('ivoa.obscore', 'o_ucd', 'obscore:Char.ObservableAxis.ucd', 'meta.ucd', NULL, 'UCD of the observable', 'char', '*', NULL, 1, 0, 1, 26),
  ('ivoa.obscore', 'pol_states', 'obscore:Char.PolarizationAxis.stateList', 'meta.code;phys.polarization', NULL, 'Polarization states present', 'char', '*', NULL, 1, 0, 1, 27),
  ('ivoa.obscore', 'pol_xel', 'obscore:Char.PolarizationAxis.numBins', 'meta.number', NULL, 'Number of polarization samples', 'long', NULL, NULL, 1, 0, 1, 28),
  ('ivoa.obscore', 'facility_name', 'obscore:Provenance.ObsConfig.Facility.name', 'meta.id;instr.tel', NULL, 'Name of the facility used for the observation', 'char', '*', NULL, 1, 0, 1, 29),
  ('ivoa.obscore', 'instrument_name', 'obscore:Provenance.ObsConfig.Instrument.name', 'meta.id;instr', NULL, 'Name of the instrument used for the observation', 'char', '*', NULL, 1, 0, 1, 30)
ON CONFLICT (table_name, column_name) DO UPDATE SET
  utype = excluded.utype, ucd = excluded.ucd, unit = excluded.unit, description = excluded.description,
  datatype = excluded.datatype, arraysize = excluded.arraysize, xtype = excluded.xtype;

-- TAP_SCHEMA as TAP 1.1 (section 4) wants it: "size" is an ADQL reserved word, so its row names it
-- delimited; `size` agrees with a fixed or bounded arraysize; TAP_SCHEMA's own foreign keys are
-- described. (004_tap_schema.sql made the first row undelimited; it is replaced here.)
DELETE FROM tap_schema.columns WHERE table_name = 'tap_schema.columns' AND column_name = 'size';
INSERT INTO tap_schema.columns
  (table_name, column_name, description, datatype, arraysize, principal, indexed, std, column_index) VALUES
  ('tap_schema.columns', '"size"', 'Length of variable length datatypes (deprecated)', 'int', NULL, 0, 0, 1, 10)
ON CONFLICT (table_name, column_name) DO NOTHING;
UPDATE tap_schema.columns SET "size" = substring(arraysize FROM '^(\d+)')::integer
  WHERE arraysize ~ '^\d+\*?$' AND "size" IS DISTINCT FROM substring(arraysize FROM '^(\d+)')::integer;

INSERT INTO tap_schema.keys (key_id, from_table, target_table, description) VALUES
  ('tap_schema.tables.schema_name', 'tap_schema.tables', 'tap_schema.schemas', 'Schema of a table'),
  ('tap_schema.columns.table_name', 'tap_schema.columns', 'tap_schema.tables', 'Table of a column'),
  ('tap_schema.keys.from_table', 'tap_schema.keys', 'tap_schema.tables', 'Table a key starts from'),
  ('tap_schema.keys.target_table', 'tap_schema.keys', 'tap_schema.tables', 'Table a key points to'),
  ('tap_schema.key_columns.key_id', 'tap_schema.key_columns', 'tap_schema.keys', 'Key of a key column')
ON CONFLICT (key_id) DO NOTHING;
INSERT INTO tap_schema.key_columns (key_id, from_column, target_column)
SELECT k, f, t FROM (VALUES
  ('tap_schema.tables.schema_name', 'schema_name', 'schema_name'),
  ('tap_schema.columns.table_name', 'table_name', 'table_name'),
  ('tap_schema.keys.from_table', 'from_table', 'table_name'),
  ('tap_schema.keys.target_table', 'target_table', 'table_name'),
  ('tap_schema.key_columns.key_id', 'key_id', 'key_id')) AS v (k, f, t)
WHERE NOT EXISTS (SELECT 1 FROM tap_schema.key_columns kc WHERE kc.key_id = v.k AND kc.from_column = v.f);
