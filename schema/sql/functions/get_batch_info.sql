-- pgq.get_batch_info(batch): what an open batch covers. All-NULL for an
-- unknown batch. (PL/pgSQL rather than SQL: a SECURITY DEFINER SQL function
-- is planned again at every call, and this is called once per batch.)
-- Every row is fetched by its whole key through a fenced subquery (OFFSET 0),
-- and sequential scans are off: the subscription table is small but full of
-- row versions (each batch updates its row twice, never HOT: sub_batch is
-- indexed), and a plan chosen from stale statistics (a join filtering every
-- tick of the queue, a scan of every version) cost 1-3 ms per call.
CREATE OR REPLACE FUNCTION pgq.get_batch_info(x_batch_id bigint,
        OUT queue_name text, OUT consumer_name text, OUT batch_start timestamptz, OUT batch_end timestamptz,
        OUT prev_tick_id bigint, OUT tick_id bigint, OUT lag interval, OUT seq_start bigint, OUT seq_end bigint)
RETURNS record LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET enable_seqscan = off AS $$
BEGIN
    SELECT q.queue_name, c.co_name, prev.tick_time, cur.tick_time, s.sub_last_tick, s.sub_next_tick,
           now() - cur.tick_time, prev.tick_event_seq, cur.tick_event_seq
      INTO queue_name, consumer_name, batch_start, batch_end, prev_tick_id, tick_id, lag, seq_start, seq_end
      FROM pgq.subscription s
     CROSS JOIN LATERAL (SELECT x.queue_name FROM pgq.queue x WHERE x.queue_id = s.sub_queue OFFSET 0) q
     CROSS JOIN LATERAL (SELECT x.co_name FROM pgq.consumer x WHERE x.co_id = s.sub_consumer OFFSET 0) c
     CROSS JOIN LATERAL (SELECT t.tick_time, t.tick_event_seq FROM pgq.tick t
                          WHERE t.tick_queue = s.sub_queue AND t.tick_id = s.sub_last_tick OFFSET 0) prev
     CROSS JOIN LATERAL (SELECT t.tick_time, t.tick_event_seq FROM pgq.tick t
                          WHERE t.tick_queue = s.sub_queue AND t.tick_id = s.sub_next_tick OFFSET 0) cur
     WHERE s.sub_batch = x_batch_id;
END
$$;
