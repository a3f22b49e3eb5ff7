-- pgq_ext.is_event_done(consumer [, subconsumer], batch, event): whether the
-- event of the batch in progress was already applied.
CREATE OR REPLACE FUNCTION pgq_ext.is_event_done(a_consumer text, a_subconsumer text,
        a_batch_id bigint, a_event_id bigint)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM pgq_ext.completed_event
                    WHERE consumer_id = a_consumer AND subconsumer_id = a_subconsumer
                      AND batch_id = a_batch_id AND event_id = a_event_id);
END
$$;

CREATE OR REPLACE FUNCTION pgq_ext.is_event_done(a_consumer text, a_batch_id bigint, a_event_id bigint)
RETURNS boolean LANGUAGE sql AS $$ SELECT pgq_ext.is_event_done(a_consumer, '', a_batch_id, a_event_id) $$;

-- pgq_ext.set_event_done(consumer [, subconsumer], batch, event): record one
-- event as applied, in the caller's transaction. Moving on to a new batch
-- forgets the previous batch's events. false when the event was already done.
CREATE OR REPLACE FUNCTION pgq_ext.set_event_done(a_consumer text, a_subconsumer text,
        a_batch_id bigint, a_event_id bigint)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    v_cur bigint;
BEGIN
    SELECT cur_batch_id INTO v_cur FROM pgq_ext.partial_batch
     WHERE consumer_id = a_consumer AND subconsumer_id = a_subconsumer
       FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO pgq_ext.partial_batch (consumer_id, subconsumer_id, cur_batch_id)
        VALUES (a_consumer, a_subconsumer, a_batch_id);
    ELSIF v_cur <> a_batch_id THEN
        DELETE FROM pgq_ext.completed_event WHERE consumer_id = a_consumer AND subconsumer_id = a_subconsumer;
        UPDATE pgq_ext.partial_batch SET cur_batch_id = a_batch_id
         WHERE consumer_id = a_consumer AND subconsumer_id = a_subconsumer;
    END IF;
    INSERT INTO pgq_ext.completed_event (consumer_id, subconsumer_id, batch_id, event_id)
    VALUES (a_consumer, a_subconsumer, a_batch_id, a_event_id)
    ON CONFLICT DO NOTHING;
    RETURN FOUND;
END
$$;

CREATE OR REPLACE FUNCTION pgq_ext.set_event_done(a_consumer text, a_batch_id bigint, a_event_id bigint)
RETURNS boolean LANGUAGE sql AS $$ SELECT pgq_ext.set_event_done(a_consumer, '', a_batch_id, a_event_id) $$;
