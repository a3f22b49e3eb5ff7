-- pgq._batch_sql(batch, extra condition): the query returning a batch's
-- events in ev_id order: rows of the batch's event tables whose txid is
-- visible in the end tick's snapshot and not in the start tick's, owned by
-- nobody or by this subscription (retried events). The txid range bounds and
-- the list of late commits let the ev_txid indexes do the work. extra_where is trusted SQL from the caller.
CREATE OR REPLACE FUNCTION pgq._batch_sql(i_batch_id bigint, i_extra_where text)
RETURNS text LANGUAGE plpgsql SET enable_seqscan = off AS $$
DECLARE
    b      record;
    v_tbl  text;
    v_sql  text := '';
    v_cond text;
    v_late text;
BEGIN
    SELECT s.sub_id, prev.tick_snapshot AS prev_snap, cur.tick_snapshot AS cur_snap
      INTO b
      FROM pgq.subscription s
     CROSS JOIN LATERAL (SELECT t.tick_snapshot FROM pgq.tick t
                          WHERE t.tick_queue = s.sub_queue AND t.tick_id = s.sub_last_tick OFFSET 0) prev
     CROSS JOIN LATERAL (SELECT t.tick_snapshot FROM pgq.tick t
                          WHERE t.tick_queue = s.sub_queue AND t.tick_id = s.sub_next_tick OFFSET 0) cur
     WHERE s.sub_batch = i_batch_id; -- key lookups only (see get_batch_info)
    IF NOT FOUND THEN
        RAISE EXCEPTION 'batch not found';
    END IF;
    -- A txid is in the batch when the end snapshot sees it and the start
    -- snapshot does not: either it is at or past the start's xmax (an index
    -- range over new txids only), or it was running at the start and has
    -- committed by the end (a short list, computed here). Starting the range
    -- at the start's xmin instead would make every batch read all events
    -- since the oldest transaction open anywhere.
    SELECT string_agg(x::text, ',' ORDER BY x) INTO v_late
      FROM txid_snapshot_xip(b.prev_snap) x
     WHERE txid_visible_in_snapshot(x, b.cur_snap);
    v_cond := ' where ((ev.ev_txid >= ' || txid_snapshot_xmax(b.prev_snap)
           || ' and ev.ev_txid <= ' || txid_snapshot_xmax(b.cur_snap)
           || ' and txid_visible_in_snapshot(ev.ev_txid, ' || quote_literal(b.cur_snap::text) || '::txid_snapshot))'
           || CASE WHEN v_late IS NULL THEN '' ELSE ' or ev.ev_txid in (' || v_late || ')' END
           || ') and (ev.ev_owner is null or ev.ev_owner = ' || b.sub_id || ')';
    IF i_extra_where IS NOT NULL THEN
        v_cond := v_cond || ' and (' || i_extra_where || ')';
    END IF;
    FOR v_tbl IN SELECT * FROM pgq.batch_event_tables(i_batch_id) LOOP
        IF v_sql <> '' THEN
            v_sql := v_sql || ' union all ';
        END IF;
        v_sql := v_sql || 'select ev.ev_id, ev.ev_time, ev.ev_txid, ev.ev_retry, ev.ev_type, ev.ev_data,'
                       || ' ev.ev_extra1, ev.ev_extra2, ev.ev_extra3, ev.ev_extra4 from '
                       || pgq.quote_fqname(v_tbl) || ' ev' || v_cond;
    END LOOP;
    RETURN v_sql || ' order by 1';
END
$$;
