-- pgq.batch_retry(batch, seconds): put every event of an open batch into the
-- retry queue. Returns how many were queued (events already queued for retry
-- are not counted again).
CREATE OR REPLACE FUNCTION pgq.batch_retry(i_batch_id bigint, i_retry_seconds integer)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET enable_seqscan = off AS $$
DECLARE
    s record;
    n integer;
BEGIN
    SELECT sub_id, sub_queue INTO s FROM pgq.subscription WHERE sub_batch = i_batch_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'batch_retry: batch % not found', i_batch_id;
    END IF;
    EXECUTE 'INSERT INTO pgq.retry_queue (ev_retry_after, ev_queue, ev_id, ev_time, ev_txid, ev_owner, ev_retry,'
         || ' ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4)'
         || ' SELECT $1, $2, b.ev_id, b.ev_time, NULL, $3, coalesce(b.ev_retry, 0) + 1,'
         || ' b.ev_type, b.ev_data, b.ev_extra1, b.ev_extra2, b.ev_extra3, b.ev_extra4'
         || ' FROM (' || pgq._batch_sql(i_batch_id, NULL) || ') b'
         || ' ON CONFLICT (ev_owner, ev_id) DO NOTHING'
      USING now() + i_retry_seconds * interval '1 second', s.sub_queue, s.sub_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
