-- pgq.unregister_consumer(queue, consumer): remove a subscription with its
-- open batch and retry events; the consumer name goes too when no queue uses
-- it any more. Returns 1 when removed, 0 when there was nothing to remove.
CREATE OR REPLACE FUNCTION pgq.unregister_consumer(x_queue_name text, x_consumer_name text)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_sub      integer;
    v_consumer integer;
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
    DELETE FROM pgq.subscription WHERE sub_id = v_sub AND sub_consumer = v_consumer;
    PERFORM 1 FROM pgq.subscription WHERE sub_consumer = v_consumer;
    IF NOT FOUND THEN
        DELETE FROM pgq.consumer WHERE co_id = v_consumer;
    END IF;
    RETURN 1;
END
$$;
