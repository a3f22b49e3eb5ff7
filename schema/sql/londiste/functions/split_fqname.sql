-- londiste.split_fqname(name): a table name as londiste keeps it, split at
-- its first dot into schema and name; no dot means schema public. Names are
-- taken as they are (not unquoted).
CREATE OR REPLACE FUNCTION londiste.split_fqname(i_fqname text, OUT schema_part text, OUT name_part text)
RETURNS record LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_dot integer := pg_catalog.strpos(i_fqname, '.');
BEGIN
    IF v_dot > 0 THEN
        schema_part := pg_catalog.substr(i_fqname, 1, v_dot - 1);
        name_part := pg_catalog.substr(i_fqname, v_dot + 1);
    ELSIF i_fqname IS NOT NULL THEN
        schema_part := 'public';
        name_part := i_fqname;
    END IF;
END
$$;
