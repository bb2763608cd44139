-- Data Lab's table of tables: fast row counts and the list of data sets, queried without a schema.
CREATE TABLE IF NOT EXISTS public.tbl_stat (
    schema        text NOT NULL,
    tbl_name      text NOT NULL,
    nrows         bigint NOT NULL,
    ncols         integer NOT NULL,
    nindex        integer NOT NULL,
    table_size    text NOT NULL,
    indexes_size  text NOT NULL,
    total_size    text NOT NULL,
    PRIMARY KEY (schema, tbl_name)
);
ALTER TABLE public.tbl_stat OWNER TO starbox_owner;
GRANT SELECT ON public.tbl_stat TO starbox_public;
