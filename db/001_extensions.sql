-- Spatial indexing: q3c (degrees, cross-matches) and pgsphere (radians, small cones, KNN, polygons).
CREATE EXTENSION IF NOT EXISTS q3c;
CREATE EXTENSION IF NOT EXISTS pg_sphere;
