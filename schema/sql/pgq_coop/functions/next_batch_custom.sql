-- pgq_coop.next_batch_custom(queue, consumer, subconsumer, min_lag, min_count,
--                            min_interval [, dead_interval]):
-- give a sub-consumer a batch of its group. In order:
--   * a batch the sub-consumer already holds is returned again (and its
--     activity time refreshed);
--   * with dead_interval, the open batch of a group member inactive for longer
--     than that is taken over: the dead member is removed and its batch is
--     returned to the caller;
--   * otherwise the group's next batch is opened with pgq.next_batch_custom on
--     the main consumer, closed for the main consumer at once (the group moves
--     on) and handed to the caller's row.
-- NULL when nothing is ready. The sub-consumer is registered when missing,
-- and so is the group (then NULL: PgQ's behaviour).
-- The main consumer's row is locked for the duration, so members of a group
-- never receive the same batch. Touches pgq.subscription, pgq.consumer.
CREATE OR REPLACE FUNCTION pgq_coop.next_batch_custom(i_queue_name text, i_consumer_name text,
        i_subconsumer_name text, i_min_lag interval, i_min_count integer, i_min_interval interval,
        i_dead_interval interval)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET enable_seqscan = off AS $$
DECLARE
    v_full   text := i_consumer_name || '.' || i_subconsumer_name;
    v_main   pgq.subscription;
    v_me     pgq.subscription;
    v_dead   record;
    v_prev   record;
    v_batch  bigint;
BEGIN
    v_main := pgq_coop._subscription(i_queue_name, i_consumer_name);
    IF v_main.sub_id IS NULL THEN
        -- an unknown group: registered, main consumer and member, as PgQ does;
        -- its first batch comes with the next call
        PERFORM pgq_coop.register_subconsumer(i_queue_name, i_consumer_name, i_subconsumer_name);
        RETURN NULL;
    END IF;
    IF v_main.sub_batch IS NOT NULL THEN
        -- PgQ's wording (clients may match it); the particulars in the detail
        RAISE EXCEPTION 'main consumer has batch open?'
              USING DETAIL = format('main consumer %s has an open batch on queue %s; cooperative consumers cannot share it',
                                    i_consumer_name, i_queue_name);
    END IF;

    v_me := pgq_coop._subscription(i_queue_name, v_full);
    IF v_me.sub_id IS NULL THEN
        PERFORM pgq_coop.register_subconsumer(i_queue_name, i_consumer_name, i_subconsumer_name);
        v_me := pgq_coop._subscription(i_queue_name, v_full);
        IF v_me.sub_id IS NULL THEN
            RAISE EXCEPTION 'subconsumer not found'
                  USING DETAIL = format('subconsumer %s not found on queue %s', v_full, i_queue_name);
        END IF;
    END IF;
    IF v_me.sub_id <> v_main.sub_id THEN
        RAISE EXCEPTION 'consumer % is registered on queue % but is not a sub-consumer of %',
                        v_full, i_queue_name, i_consumer_name;
    END IF;

    IF v_me.sub_batch IS NOT NULL THEN
        UPDATE pgq.subscription SET sub_active = now()
         WHERE sub_queue = v_main.sub_queue AND sub_consumer = v_me.sub_consumer;
        RETURN v_me.sub_batch;
    END IF;

    IF i_dead_interval IS NOT NULL THEN
        SELECT s.sub_consumer, s.sub_batch, s.sub_last_tick, s.sub_next_tick INTO v_dead
          FROM pgq.subscription s
         WHERE s.sub_queue = v_main.sub_queue AND s.sub_id = v_main.sub_id
           AND s.sub_consumer NOT IN (v_main.sub_consumer, v_me.sub_consumer)
           AND s.sub_batch IS NOT NULL
           AND s.sub_active < now() - i_dead_interval
         ORDER BY s.sub_active
         LIMIT 1
           FOR UPDATE OF s;
        IF FOUND THEN
            DELETE FROM pgq.subscription WHERE sub_queue = v_main.sub_queue AND sub_consumer = v_dead.sub_consumer;
            PERFORM 1 FROM pgq.subscription WHERE sub_consumer = v_dead.sub_consumer;
            IF NOT FOUND THEN
                DELETE FROM pgq.consumer WHERE co_id = v_dead.sub_consumer;
            END IF;
            UPDATE pgq.subscription
               SET sub_batch = v_dead.sub_batch, sub_last_tick = v_dead.sub_last_tick,
                   sub_next_tick = v_dead.sub_next_tick, sub_active = now()
             WHERE sub_queue = v_main.sub_queue AND sub_consumer = v_me.sub_consumer;
            RETURN v_dead.sub_batch;
        END IF;
    END IF;

    v_batch := (pgq.next_batch_custom(i_queue_name, i_consumer_name, i_min_lag, i_min_count, i_min_interval)).batch_id;
    IF v_batch IS NULL THEN
        UPDATE pgq.subscription SET sub_active = now()
         WHERE sub_queue = v_main.sub_queue AND sub_consumer = v_me.sub_consumer;
        RETURN NULL;
    END IF;

    -- move the batch from the main row (which advances) to the caller's row
    SELECT sub_last_tick, sub_next_tick INTO v_prev
      FROM pgq.subscription
     WHERE sub_queue = v_main.sub_queue AND sub_consumer = v_main.sub_consumer;
    UPDATE pgq.subscription
       SET sub_last_tick = sub_next_tick, sub_next_tick = NULL, sub_batch = NULL
     WHERE sub_queue = v_main.sub_queue AND sub_consumer = v_main.sub_consumer;
    UPDATE pgq.subscription
       SET sub_batch = v_batch, sub_last_tick = v_prev.sub_last_tick, sub_next_tick = v_prev.sub_next_tick,
           sub_active = now()
     WHERE sub_queue = v_main.sub_queue AND sub_consumer = v_me.sub_consumer;
    RETURN v_batch;
END
$$;

-- The 6-argument form: no takeover of dead sub-consumers' batches.
CREATE OR REPLACE FUNCTION pgq_coop.next_batch_custom(i_queue_name text, i_consumer_name text,
        i_subconsumer_name text, i_min_lag interval, i_min_count integer, i_min_interval interval)
RETURNS bigint LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET enable_seqscan = off AS $$
    SELECT pgq_coop.next_batch_custom(i_queue_name, i_consumer_name, i_subconsumer_name,
                                      i_min_lag, i_min_count, i_min_interval, NULL::interval)
$$;
