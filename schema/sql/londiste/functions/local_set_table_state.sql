-- londiste.local_set_table_state(queue, table, snapshot, state): a local
-- table's copy state (merge_state: NULL, in-copy, catching-up, wanna-sync:T,
-- do-sync:T, ok) and the snapshot its copy was taken in.
CREATE OR REPLACE FUNCTION londiste.local_set_table_state(i_queue_name text, i_table_name text,
        i_snapshot text, i_merge_state text, OUT ret_code integer, OUT ret_note text)
RETURNS record LANGUAGE plpgsql AS $$
DECLARE
    v_name text := londiste.make_fqname(i_table_name);
BEGIN
    UPDATE londiste.table_info SET custom_snapshot = i_snapshot, merge_state = i_merge_state
     WHERE queue_name = i_queue_name AND table_name = v_name AND local;
    IF NOT FOUND THEN
        ret_code := 404;
        ret_note := 'No such table: ' || v_name;
        RETURN;
    END IF;
    ret_code := 200;
    ret_note := 'Table ' || v_name || ' state set to ' || coalesce(pg_catalog.quote_literal(i_merge_state), 'NULL');
END
$$;
