-- pgq.batch_event_tables(batch): the event tables that can hold the batch's
-- events, oldest first: the previous table unless every transaction that could
-- have written there (txid below the last rotation's step-2 txid) had finished
-- before the batch's start tick, then the current table.
CREATE OR REPLACE FUNCTION pgq.batch_event_tables(x_batch_id bigint)
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    b record;
BEGIN
    SELECT q.queue_data_pfx, q.queue_cur_table, q.queue_ntables, q.queue_switch_step2,
           txid_snapshot_xmin(prev.tick_snapshot) AS start_xmin
      INTO b
      FROM pgq.subscription s
      JOIN pgq.queue q ON q.queue_id = s.sub_queue
      JOIN pgq.tick prev ON prev.tick_queue = s.sub_queue AND prev.tick_id = s.sub_last_tick
     WHERE s.sub_batch = x_batch_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'Cannot find data for batch %', x_batch_id;
    END IF;
    IF b.queue_switch_step2 IS NULL OR b.start_xmin <= b.queue_switch_step2 THEN
        RETURN NEXT b.queue_data_pfx || '_' || ((b.queue_cur_table + b.queue_ntables - 1) % b.queue_ntables);
    END IF;
    RETURN NEXT b.queue_data_pfx || '_' || b.queue_cur_table;
END
$$;
