-- pgq_coop.next_batch(queue, consumer, subconsumer [, dead_interval]): the
-- group's next batch without thresholds; see pgq_coop.next_batch_custom.
CREATE OR REPLACE FUNCTION pgq_coop.next_batch(i_queue_name text, i_consumer_name text,
        i_subconsumer_name text)
RETURNS bigint LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT pgq_coop.next_batch_custom(i_queue_name, i_consumer_name, i_subconsumer_name,
                                      NULL::interval, NULL::integer, NULL::interval, NULL::interval)
$$;

CREATE OR REPLACE FUNCTION pgq_coop.next_batch(i_queue_name text, i_consumer_name text,
        i_subconsumer_name text, i_dead_interval interval)
RETURNS bigint LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT pgq_coop.next_batch_custom(i_queue_name, i_consumer_name, i_subconsumer_name,
                                      NULL::interval, NULL::integer, NULL::interval, i_dead_interval)
$$;
