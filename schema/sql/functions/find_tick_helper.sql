-- pgq.find_tick_helper(queue id, prev tick id/time/seq, min count, min
-- interval): the first tick after prev_tick that closes a batch of at least
-- min_count events or spanning at least min_interval (whichever comes first).
-- All-NULL result when no tick qualifies yet.
CREATE OR REPLACE FUNCTION pgq.find_tick_helper(i_queue_id integer, i_prev_tick_id bigint,
        i_prev_tick_time timestamptz, i_prev_tick_seq bigint, i_min_count bigint, i_min_interval interval,
        OUT next_tick_id bigint, OUT next_tick_time timestamptz, OUT next_tick_seq bigint)
RETURNS record LANGUAGE plpgsql STABLE AS $$
BEGIN
    SELECT t.tick_id, t.tick_time, t.tick_event_seq
      INTO next_tick_id, next_tick_time, next_tick_seq
      FROM pgq.tick t
     WHERE t.tick_queue = i_queue_id AND t.tick_id > i_prev_tick_id
       AND ((i_min_count IS NOT NULL AND t.tick_event_seq - i_prev_tick_seq >= i_min_count)
         OR (i_min_interval IS NOT NULL AND t.tick_time - i_prev_tick_time >= i_min_interval))
     ORDER BY t.tick_queue, t.tick_id
     LIMIT 1;
END
$$;
