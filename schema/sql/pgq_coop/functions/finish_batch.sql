-- pgq_coop.finish_batch(batch): close a sub-consumer's batch; its row moves to
-- the batch's end tick. Returns 1, or 0 when no sub-consumer holds the batch.
-- Touches pgq.subscription.
CREATE OR REPLACE FUNCTION pgq_coop.finish_batch(i_batch_id bigint)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER AS $$
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
