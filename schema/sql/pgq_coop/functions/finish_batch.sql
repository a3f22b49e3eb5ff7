-- pgq_coop.finish_batch(batch): close a sub-consumer's batch; its row moves to
-- the batch's end tick. Returns 1, or 0 when no sub-consumer holds the batch.
-- Touches pgq.subscription.
CREATE OR REPLACE FUNCTION pgq_coop.finish_batch(i_batch_id bigint)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET enable_seqscan = off AS $$
BEGIN
    UPDATE pgq.subscription
       SET sub_active = now(), sub_last_tick = sub_next_tick, sub_next_tick = NULL, sub_batch = NULL
     WHERE sub_batch = i_batch_id;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    RETURN 1;
END
$$;

-- pgq_coop.finish_batch(batch, queue, consumer, subconsumer): pgqgo's form,
-- which closes the batch only if this sub-consumer still holds it. A member
-- that was silent past the dead interval may have lost the batch to another
-- member; the one-argument form would then close the other member's batch
-- and both would apply it. Returns 1, or 0 when the batch is not the caller's.
CREATE OR REPLACE FUNCTION pgq_coop.finish_batch(i_batch_id bigint, i_queue_name text, i_consumer_name text,
        i_subconsumer_name text)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET enable_seqscan = off AS $$
BEGIN
    UPDATE pgq.subscription s
       SET sub_active = now(), sub_last_tick = sub_next_tick, sub_next_tick = NULL, sub_batch = NULL
      FROM pgq.queue q, pgq.consumer c
     WHERE s.sub_batch = i_batch_id
       AND q.queue_id = s.sub_queue AND q.queue_name = i_queue_name
       AND c.co_id = s.sub_consumer AND c.co_name = i_consumer_name || '.' || i_subconsumer_name;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    RETURN 1;
END
$$;
