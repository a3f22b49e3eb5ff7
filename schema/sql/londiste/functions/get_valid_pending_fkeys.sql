-- londiste.get_valid_pending_fkeys(queue): the dropped foreign keys that can
-- be restored: both their tables are replicated here and copied (ok).
CREATE OR REPLACE FUNCTION londiste.get_valid_pending_fkeys(i_queue_name text)
RETURNS SETOF londiste.pending_fkeys LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY
    SELECT p.* FROM londiste.pending_fkeys p
     WHERE EXISTS (SELECT 1 FROM londiste.table_info t WHERE t.queue_name = i_queue_name
                      AND t.table_name = p.from_table AND t.local AND t.merge_state = 'ok')
       AND EXISTS (SELECT 1 FROM londiste.table_info t WHERE t.queue_name = i_queue_name
                      AND t.table_name = p.to_table AND t.local AND t.merge_state = 'ok')
     ORDER BY p.from_table, p.fkey_name;
END
$$;
