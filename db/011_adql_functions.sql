-- The IVOA user-defined functions ivo_hasword and ivo_healpix_index (as GAVO DaCHS answers
-- them), for TAP and the Data Lab API's adql= (starbox.adql_translate lets them through; the
-- TAP capabilities declare them). ADQL 2.1's bitwise operators need nothing here: & | ~ are
-- PostgreSQL's, and starbox.tap.adql writes ^ (XOR) as #.
-- IMMUTABLE and PARALLEL SAFE: they only compute. Idempotent.

-- ivo_hasword(haystack, needle): 1 when every word of needle is a word of haystack, case
-- folded (as DaCHS's full-text match, without stemming), else 0.
CREATE OR REPLACE FUNCTION public.ivo_hasword(haystack text, needle text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN to_tsvector('simple', coalesce(haystack, '')) @@ plainto_tsquery('simple', coalesce(needle, ''))
              THEN 1 ELSE 0 END
$$;

-- ivo_healpix_index(order, ra, dec): the NESTED HEALPix index (Gorski et al. 2005) of a
-- position in degrees at that order (0..29).
CREATE OR REPLACE FUNCTION public.ivo_healpix_index(hpx_order integer, ra_deg double precision, dec_deg double precision)
RETURNS bigint LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  nside bigint;
  z double precision := sin(radians(dec_deg));
  za double precision := abs(sin(radians(dec_deg)));
  tt double precision := ((radians(ra_deg) / (pi() / 2.0))::numeric % 4)::double precision;
  jp bigint; jm bigint; ifp bigint; ifm bigint; face bigint; ix bigint; iy bigint;
  ntt bigint; tp double precision; tmp double precision;
  code bigint := 0; bit integer;
BEGIN
  IF hpx_order < 0 OR hpx_order > 29 THEN
    RAISE EXCEPTION 'ivo_healpix_index: the order is 0 to 29, not %', hpx_order;
  END IF;
  nside := 1::bigint << hpx_order;
  IF tt < 0 THEN tt := tt + 4; END IF;
  IF za <= 2.0 / 3.0 THEN  -- the equatorial belt
    jp := floor(nside * (0.5 + tt) - nside * z * 0.75);
    jm := floor(nside * (0.5 + tt) + nside * z * 0.75);
    ifp := jp / nside; ifm := jm / nside;
    face := CASE WHEN ifp = ifm THEN ifp | 4 WHEN ifp < ifm THEN ifp ELSE ifm + 8 END;
    ix := jm & (nside - 1);
    iy := nside - (jp & (nside - 1)) - 1;
  ELSE  -- the polar caps
    ntt := least(3, floor(tt)::bigint);
    tp := tt - ntt;
    tmp := nside * sqrt(3.0 * (1.0 - za));
    jp := least(nside - 1, floor(tp * tmp)::bigint);
    jm := least(nside - 1, floor((1.0 - tp) * tmp)::bigint);
    IF z >= 0 THEN
      face := ntt; ix := nside - jm - 1; iy := nside - jp - 1;
    ELSE
      face := ntt + 8; ix := jp; iy := jm;
    END IF;
  END IF;
  FOR bit IN 0 .. hpx_order - 1 LOOP  -- interleave: x bits at even places, y bits at odd ones
    code := code | (((ix >> bit) & 1) << (2 * bit)) | (((iy >> bit) & 1) << (2 * bit + 1));
  END LOOP;
  RETURN face * nside * nside + code;
END
$$;

CREATE OR REPLACE FUNCTION public.ivo_healpix_index(hpx_order integer, p spoint) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT public.ivo_healpix_index(hpx_order, degrees(long(p)), degrees(lat(p)))
$$;

DO $$
DECLARE f regprocedure;
BEGIN
  FOR f IN SELECT oid::regprocedure FROM pg_proc WHERE pronamespace = 'public'::regnamespace
             AND proname IN ('ivo_hasword', 'ivo_healpix_index') LOOP
    EXECUTE format('ALTER FUNCTION %s OWNER TO starbox_owner', f);
  END LOOP;
END
$$;
