-- londiste.get_table_pending_fkeys(table): the dropped foreign keys from or
-- to the table.
CREATE OR REPLACE FUNCTION londiste.get_table_pending_fkeys(i_table_name text)
RETURNS SETOF londiste.pending_fkeys LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY SELECT p.* FROM londiste.pending_fkeys p
                  WHERE p.from_table = i_table_name OR p.to_table = i_table_name
                  ORDER BY p.from_table, p.fkey_name;
END
$$;
