-- pgq.finish_batch(batch): close a batch; the consumer moves to its end tick.
-- Returns 1, or 0 with a warning when there is no such open batch.
CREATE OR REPLACE FUNCTION pgq.finish_batch(x_batch_id bigint)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET enable_seqscan = off AS $$
BEGIN
    UPDATE pgq.subscription
       SET sub_active = now(), sub_last_tick = sub_next_tick, sub_next_tick = NULL, sub_batch = NULL
     WHERE sub_batch = x_batch_id;
    IF NOT FOUND THEN
        RAISE WARNING 'finish_batch: batch % not found', x_batch_id;
        RETURN 0;
    END IF;
    RETURN 1;
END
$$;
