-- pgq.quote_fqname(name): quote a possibly schema-qualified name. The text up
-- to the first dot is the schema (public when there is no dot); the rest is
-- the object name. Each part is quoted on its own, without parsing quotes.
CREATE OR REPLACE FUNCTION pgq.quote_fqname(i_name text)
RETURNS text LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT CASE WHEN strpos(i_name, '.') = 0
                THEN 'public.' || quote_ident(i_name)
                ELSE quote_ident(substr(i_name, 1, strpos(i_name, '.') - 1)) || '.'
                     || quote_ident(substr(i_name, strpos(i_name, '.') + 1))
           END
$$;
