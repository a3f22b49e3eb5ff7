-- pgq.get_batch_cursor(batch, cursor name, quick limit [, extra where]):
-- open a cursor over the batch's events and return its first quick_limit
-- rows. The cursor stays open (until transaction end or CLOSE) for the caller
-- to FETCH the rest; it is left open even when the batch was smaller, as PgQ
-- 3.5 leaves it, so callers may close it unconditionally.
CREATE OR REPLACE FUNCTION pgq.get_batch_cursor(i_batch_id bigint, i_cursor_name text, i_quick_limit integer,
        i_extra_where text,
        OUT ev_id bigint, OUT ev_time timestamptz, OUT ev_txid bigint, OUT ev_retry integer,
        OUT ev_type text, OUT ev_data text, OUT ev_extra1 text, OUT ev_extra2 text,
        OUT ev_extra3 text, OUT ev_extra4 text)
RETURNS SETOF record LANGUAGE plpgsql AS $$
DECLARE
    v_cur   refcursor := i_cursor_name;
    v_count integer := 0;
BEGIN
    OPEN v_cur NO SCROLL FOR EXECUTE pgq._batch_sql(i_batch_id, i_extra_where);
    LOOP
        EXIT WHEN v_count >= i_quick_limit;
        FETCH v_cur INTO ev_id, ev_time, ev_txid, ev_retry, ev_type, ev_data,
                         ev_extra1, ev_extra2, ev_extra3, ev_extra4;
        EXIT WHEN NOT FOUND;
        v_count := v_count + 1;
        RETURN NEXT;
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION pgq.get_batch_cursor(i_batch_id bigint, i_cursor_name text, i_quick_limit integer,
        OUT ev_id bigint, OUT ev_time timestamptz, OUT ev_txid bigint, OUT ev_retry integer,
        OUT ev_type text, OUT ev_data text, OUT ev_extra1 text, OUT ev_extra2 text,
        OUT ev_extra3 text, OUT ev_extra4 text)
RETURNS SETOF record LANGUAGE sql STRICT AS $$
    SELECT * FROM pgq.get_batch_cursor(i_batch_id, i_cursor_name, i_quick_limit, NULL)
$$;
