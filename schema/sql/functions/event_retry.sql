-- pgq.event_retry(batch, event, retry time | seconds): put one event of an
-- open batch into the retry queue, to be redelivered to this consumer only,
-- after the given time. Returns 1, or 0 when it is already queued for retry.
CREATE OR REPLACE FUNCTION pgq.event_retry(x_batch_id bigint, x_event_id bigint, x_retry_time timestamptz)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET enable_seqscan = off AS $$
DECLARE
    s  record;
    ev record;
    n  integer;
BEGIN
    SELECT sub_id, sub_queue INTO s FROM pgq.subscription WHERE sub_batch = x_batch_id;
    -- (a NULL event would make the event condition NULL, and so none: it
    -- would pick the batch's first event)
    IF NOT FOUND OR x_event_id IS NULL THEN
        RAISE EXCEPTION 'event not found';
    END IF;
    EXECUTE pgq._batch_sql(x_batch_id, 'ev.ev_id = ' || x_event_id) INTO ev;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
        RAISE EXCEPTION 'event not found';
    END IF;
    INSERT INTO pgq.retry_queue (ev_retry_after, ev_queue, ev_id, ev_time, ev_txid, ev_owner, ev_retry,
                                 ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4)
    VALUES (x_retry_time, s.sub_queue, ev.ev_id, ev.ev_time, NULL, s.sub_id, coalesce(ev.ev_retry, 0) + 1,
            ev.ev_type, ev.ev_data, ev.ev_extra1, ev.ev_extra2, ev.ev_extra3, ev.ev_extra4)
    ON CONFLICT (ev_owner, ev_id) DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

CREATE OR REPLACE FUNCTION pgq.event_retry(x_batch_id bigint, x_event_id bigint, x_retry_seconds integer)
RETURNS integer LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET enable_seqscan = off AS $$
    SELECT pgq.event_retry(x_batch_id, x_event_id, now() + x_retry_seconds * interval '1 second')
$$;
