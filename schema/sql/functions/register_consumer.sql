-- pgq.register_consumer(queue, consumer): subscribe a consumer to a queue at
-- its latest tick, so it sees events from now on. Returns 1 when subscribed,
-- 0 when it already was.
CREATE OR REPLACE FUNCTION pgq.register_consumer(x_queue_name text, x_consumer_id text)
RETURNS integer LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT pgq.register_consumer_at(x_queue_name, x_consumer_id, NULL)
$$;
