-- pgq.batch_event_sql(batch): the SQL text that returns the batch's events.
CREATE OR REPLACE FUNCTION pgq.batch_event_sql(x_batch_id bigint)
RETURNS text LANGUAGE sql AS $$
    SELECT pgq._batch_sql(x_batch_id, NULL)
$$;
