-- pgq_coop._subscription(queue, consumer): the consumer's subscription row on
-- the queue, locked FOR UPDATE; all-NULL when it is not subscribed. Every
-- pgq_coop function locks the group's main row through this first, so group
-- members are serialised and never deadlock. Internal: not granted.
CREATE OR REPLACE FUNCTION pgq_coop._subscription(i_queue_name text, i_consumer_name text)
RETURNS pgq.subscription LANGUAGE plpgsql AS $$
DECLARE
    r pgq.subscription%ROWTYPE;
BEGIN
    SELECT s.* INTO r
      FROM pgq.subscription s
      JOIN pgq.queue q ON q.queue_id = s.sub_queue
      JOIN pgq.consumer c ON c.co_id = s.sub_consumer
     WHERE q.queue_name = i_queue_name AND c.co_name = i_consumer_name
       FOR UPDATE OF s;
    RETURN r;
END
$$;
