-- londiste.find_table_oid(name): the table's oid, or NULL.
CREATE OR REPLACE FUNCTION londiste.find_table_oid(tbl text)
RETURNS oid LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN londiste.find_rel_oid(tbl, 'r');
END
$$;
