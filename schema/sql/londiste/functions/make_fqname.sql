-- londiste.make_fqname(name): the name with its schema (public when it has
-- none), as londiste keeps table names.
CREATE OR REPLACE FUNCTION londiste.make_fqname(i_name text)
RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF pg_catalog.strpos(i_name, '.') > 0 THEN
        RETURN i_name;
    END IF;
    RETURN 'public.' || i_name;
END
$$;
