-- pgq.get_consumer_info([queue [, consumer]]): every subscription with its
-- lag (age of its last tick), last_seen (time since it last asked for or
-- finished a batch), position, open batch and pending_events (events ticked
-- on the queue after its position).
CREATE OR REPLACE FUNCTION pgq.get_consumer_info(i_queue_name text, i_consumer_name text,
        OUT queue_name text, OUT consumer_name text, OUT lag interval, OUT last_seen interval,
        OUT last_tick bigint, OUT current_batch bigint, OUT next_tick bigint, OUT pending_events bigint)
RETURNS SETOF record LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT q.queue_name, c.co_name, now() - t.tick_time, now() - s.sub_active,
           s.sub_last_tick, s.sub_batch, s.sub_next_tick,
           (SELECT lt.tick_event_seq FROM pgq.tick lt WHERE lt.tick_queue = q.queue_id
             ORDER BY lt.tick_queue DESC, lt.tick_id DESC LIMIT 1) - t.tick_event_seq
      FROM pgq.subscription s
      JOIN pgq.queue q ON q.queue_id = s.sub_queue
      JOIN pgq.consumer c ON c.co_id = s.sub_consumer
      LEFT JOIN pgq.tick t ON t.tick_queue = s.sub_queue AND t.tick_id = s.sub_last_tick
     WHERE (i_queue_name IS NULL OR q.queue_name = i_queue_name)
       AND (i_consumer_name IS NULL OR c.co_name = i_consumer_name)
     ORDER BY q.queue_name, c.co_name
$$;

CREATE OR REPLACE FUNCTION pgq.get_consumer_info(i_queue_name text,
        OUT queue_name text, OUT consumer_name text, OUT lag interval, OUT last_seen interval,
        OUT last_tick bigint, OUT current_batch bigint, OUT next_tick bigint, OUT pending_events bigint)
RETURNS SETOF record LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM pgq.get_consumer_info(i_queue_name, NULL)
$$;

CREATE OR REPLACE FUNCTION pgq.get_consumer_info(
        OUT queue_name text, OUT consumer_name text, OUT lag interval, OUT last_seen interval,
        OUT last_tick bigint, OUT current_batch bigint, OUT next_tick bigint, OUT pending_events bigint)
RETURNS SETOF record LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT * FROM pgq.get_consumer_info(NULL, NULL)
$$;
