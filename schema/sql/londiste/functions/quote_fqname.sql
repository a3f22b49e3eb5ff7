-- londiste.quote_fqname(name): the name with its schema, each part quoted
-- for use in SQL.
CREATE OR REPLACE FUNCTION londiste.quote_fqname(i_name text)
RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    p record;
BEGIN
    SELECT * INTO p FROM londiste.split_fqname(i_name);
    RETURN pg_catalog.quote_ident(p.schema_part) || '.' || pg_catalog.quote_ident(p.name_part);
END
$$;
