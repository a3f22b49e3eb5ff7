-- pgq.unregister_consumer(queue, consumer): remove a subscription with its
-- open batch and retry events; the consumer name goes too when no queue uses
-- it any more. A cooperative group (pgq_coop) shares one sub_id between its
-- main consumer and its members: as in PgQ 3.5, unregistering any of them
-- removes every subscription of that sub_id and the group's retry events
-- (the members' names stay in pgq.consumer). Returns the number of
-- subscriptions removed (1 for a plain consumer), 0 when there was nothing.
CREATE OR REPLACE FUNCTION pgq.unregister_consumer(x_queue_name text, x_consumer_name text)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_sub      integer;
    v_consumer integer;
    v_n        integer;
BEGIN
    SELECT s.sub_id, s.sub_consumer INTO v_sub, v_consumer
      FROM pgq.subscription s
      JOIN pgq.queue q ON q.queue_id = s.sub_queue
      JOIN pgq.consumer c ON c.co_id = s.sub_consumer
     WHERE q.queue_name = x_queue_name AND c.co_name = x_consumer_name
       FOR UPDATE OF s;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    DELETE FROM pgq.retry_queue WHERE ev_owner = v_sub;
    DELETE FROM pgq.subscription WHERE sub_id = v_sub;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    PERFORM 1 FROM pgq.subscription WHERE sub_consumer = v_consumer;
    IF NOT FOUND THEN
        DELETE FROM pgq.consumer WHERE co_id = v_consumer;
    END IF;
    RETURN v_n;
END
$$;
