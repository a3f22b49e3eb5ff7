-- pgq.batch_event_sql(batch): the SQL text that returns the batch's events.
-- PL/pgSQL, not SQL: a SQL function's body is planned again on every call
-- from a new statement, which consumers make once per batch.
CREATE OR REPLACE FUNCTION pgq.batch_event_sql(x_batch_id bigint)
RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    RETURN pgq._batch_sql(x_batch_id, NULL);
END
$$;
