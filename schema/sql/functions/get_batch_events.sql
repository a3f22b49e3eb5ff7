-- pgq.get_batch_events(batch): all events of a batch, in ev_id order. Use
-- get_batch_cursor for batches too big to take in one result.
CREATE OR REPLACE FUNCTION pgq.get_batch_events(x_batch_id bigint,
        OUT ev_id bigint, OUT ev_time timestamptz, OUT ev_txid bigint, OUT ev_retry integer,
        OUT ev_type text, OUT ev_data text, OUT ev_extra1 text, OUT ev_extra2 text,
        OUT ev_extra3 text, OUT ev_extra4 text)
RETURNS SETOF record LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE pgq._batch_sql(x_batch_id, NULL);
END
$$;
