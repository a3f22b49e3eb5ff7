-- pgq.batch_event_tables(batch): the event tables that can hold the batch's
-- events, oldest first: the previous table unless every transaction that could
-- have written there (txid below the last rotation's step-2 txid) had finished
-- before the batch's start tick, then the current table.
CREATE OR REPLACE FUNCTION pgq.batch_event_tables(x_batch_id bigint)
RETURNS SETOF text LANGUAGE plpgsql SET enable_seqscan = off AS $$
DECLARE
    b record;
BEGIN
    SELECT q.queue_data_pfx, q.queue_cur_table, q.queue_ntables, q.queue_switch_step2,
           txid_snapshot_xmin(prev.tick_snapshot) AS start_xmin
      INTO b
      FROM pgq.subscription s
     CROSS JOIN LATERAL (SELECT x.queue_data_pfx, x.queue_cur_table, x.queue_ntables, x.queue_switch_step2
                           FROM pgq.queue x WHERE x.queue_id = s.sub_queue OFFSET 0) q
     CROSS JOIN LATERAL (SELECT t.tick_snapshot FROM pgq.tick t
                          WHERE t.tick_queue = s.sub_queue AND t.tick_id = s.sub_last_tick OFFSET 0) prev
     WHERE s.sub_batch = x_batch_id; -- key lookups only (see get_batch_info)
    IF NOT FOUND THEN
        RAISE EXCEPTION 'Cannot find data for batch %', x_batch_id;
    END IF;
    IF b.queue_switch_step2 IS NULL OR b.start_xmin <= b.queue_switch_step2 THEN
        RETURN NEXT b.queue_data_pfx || '_' || ((b.queue_cur_table + b.queue_ntables - 1) % b.queue_ntables);
    END IF;
    RETURN NEXT b.queue_data_pfx || '_' || b.queue_cur_table;
END
$$;
