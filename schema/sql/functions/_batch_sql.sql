-- pgq._batch_sql(batch, extra condition): the query returning a batch's
-- events in ev_id order: rows of the batch's event tables whose txid is
-- visible in the end tick's snapshot and not in the start tick's, owned by
-- nobody or by this subscription (retried events). The txid range bounds and
-- the list of late commits let the ev_txid indexes do the work. extra_where is trusted SQL from the caller.
CREATE OR REPLACE FUNCTION pgq._batch_sql(i_batch_id bigint, i_extra_where text)
RETURNS text LANGUAGE plpgsql SET enable_seqscan = off AS $$
DECLARE
    b        record;
    v_sql    text := '';
    v_cond   text;
    v_schema text;
    v_name   text;
BEGIN
    -- one query for everything (consumers call this once per batch, in a
    -- transaction of its own, where every statement is prepared anew): the
    -- subscription, both snapshots, the queue's tables, the late commits
    SELECT s.sub_id, prev.tick_snapshot AS prev_snap, cur.tick_snapshot AS cur_snap,
           q.queue_data_pfx, q.queue_cur_table, q.queue_ntables, q.queue_switch_step2,
           (SELECT string_agg(x::text, ',' ORDER BY x) FROM txid_snapshot_xip(prev.tick_snapshot) x
             WHERE txid_visible_in_snapshot(x, cur.tick_snapshot)) AS late
      INTO b
      FROM pgq.subscription s
     CROSS JOIN LATERAL (SELECT x.queue_data_pfx, x.queue_cur_table, x.queue_ntables, x.queue_switch_step2
                           FROM pgq.queue x WHERE x.queue_id = s.sub_queue OFFSET 0) q
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
    -- committed by the end (b.late, a short list). Starting the range at the
    -- start's xmin instead would make every batch read all events since the
    -- oldest transaction open anywhere.
    v_cond := ' where ((ev.ev_txid >= ' || txid_snapshot_xmax(b.prev_snap)
           || ' and ev.ev_txid <= ' || txid_snapshot_xmax(b.cur_snap)
           || ' and txid_visible_in_snapshot(ev.ev_txid, ' || quote_literal(b.cur_snap::text) || '::txid_snapshot))'
           || CASE WHEN b.late IS NULL THEN '' ELSE ' or ev.ev_txid in (' || b.late || ')' END
           || ') and (ev.ev_owner is null or ev.ev_owner = ' || b.sub_id || ')';
    IF i_extra_where IS NOT NULL THEN
        v_cond := v_cond || ' and (' || i_extra_where || ')';
    END IF;
    -- the tables pgq.batch_event_tables names: the previous one while the
    -- batch may reach back across the last rotation, then the current one
    -- (quoted as pgq.quote_fqname quotes)
    IF strpos(b.queue_data_pfx, '.') = 0 THEN
        v_schema := 'public';
        v_name := b.queue_data_pfx;
    ELSE
        v_schema := substr(b.queue_data_pfx, 1, strpos(b.queue_data_pfx, '.') - 1);
        v_name := substr(b.queue_data_pfx, strpos(b.queue_data_pfx, '.') + 1);
    END IF;
    IF b.queue_switch_step2 IS NULL OR txid_snapshot_xmin(b.prev_snap) <= b.queue_switch_step2 THEN
        v_sql := 'select ev.ev_id, ev.ev_time, ev.ev_txid, ev.ev_retry, ev.ev_type, ev.ev_data,'
              || ' ev.ev_extra1, ev.ev_extra2, ev.ev_extra3, ev.ev_extra4 from '
              || quote_ident(v_schema) || '.'
              || quote_ident(v_name || '_' || ((b.queue_cur_table + b.queue_ntables - 1) % b.queue_ntables))
              || ' ev' || v_cond || ' union all ';
    END IF;
    RETURN v_sql || 'select ev.ev_id, ev.ev_time, ev.ev_txid, ev.ev_retry, ev.ev_type, ev.ev_data,'
        || ' ev.ev_extra1, ev.ev_extra2, ev.ev_extra3, ev.ev_extra4 from '
        || quote_ident(v_schema) || '.' || quote_ident(v_name || '_' || b.queue_cur_table)
        || ' ev' || v_cond || ' order by 1';
END
$$;
