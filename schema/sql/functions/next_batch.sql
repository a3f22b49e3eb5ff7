-- pgq.next_batch_info(queue, consumer): next_batch_custom without thresholds.
CREATE OR REPLACE FUNCTION pgq.next_batch_info(i_queue_name text, i_consumer_name text,
        OUT batch_id bigint, OUT cur_tick_id bigint, OUT prev_tick_id bigint,
        OUT cur_tick_time timestamptz, OUT prev_tick_time timestamptz,
        OUT cur_tick_event_seq bigint, OUT prev_tick_event_seq bigint)
RETURNS record LANGUAGE sql AS $$
    SELECT f.batch_id, f.cur_tick_id, f.prev_tick_id, f.cur_tick_time, f.prev_tick_time,
           f.cur_tick_event_seq, f.prev_tick_event_seq
      FROM pgq.next_batch_custom(i_queue_name, i_consumer_name, NULL, NULL, NULL) f
$$;

-- pgq.next_batch(queue, consumer): the consumer's next batch id, or NULL.
CREATE OR REPLACE FUNCTION pgq.next_batch(i_queue_name text, i_consumer_name text)
RETURNS bigint LANGUAGE sql AS $$
    SELECT f.batch_id FROM pgq.next_batch_custom(i_queue_name, i_consumer_name, NULL, NULL, NULL) f
$$;
