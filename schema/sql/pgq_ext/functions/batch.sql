-- pgq_ext.is_batch_done(consumer [, subconsumer], batch): whether the batch
-- is the last one recorded as applied for the consumer. Only the last batch is
-- kept: a consumer checks the batch it was handed again, never an older one.
CREATE OR REPLACE FUNCTION pgq_ext.is_batch_done(a_consumer text, a_subconsumer text, a_batch_id bigint)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    -- PL/pgSQL keeps the plan across calls; an SQL function would plan each time
    RETURN EXISTS (SELECT 1 FROM pgq_ext.completed_batch
                    WHERE consumer_id = a_consumer AND subconsumer_id = a_subconsumer
                      AND last_batch_id = a_batch_id);
END
$$;

CREATE OR REPLACE FUNCTION pgq_ext.is_batch_done(a_consumer text, a_batch_id bigint)
RETURNS boolean LANGUAGE sql AS $$ SELECT pgq_ext.is_batch_done(a_consumer, '', a_batch_id) $$;

-- pgq_ext.set_batch_done(consumer [, subconsumer], batch): record the batch as
-- applied, in the caller's transaction. false when it already was.
CREATE OR REPLACE FUNCTION pgq_ext.set_batch_done(a_consumer text, a_subconsumer text, a_batch_id bigint)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF pgq_ext.is_batch_done(a_consumer, a_subconsumer, a_batch_id) THEN
        RETURN false;
    END IF;
    INSERT INTO pgq_ext.completed_batch (consumer_id, subconsumer_id, last_batch_id)
    VALUES (a_consumer, a_subconsumer, a_batch_id)
    ON CONFLICT (consumer_id, subconsumer_id) DO UPDATE SET last_batch_id = excluded.last_batch_id;
    RETURN true;
END
$$;

CREATE OR REPLACE FUNCTION pgq_ext.set_batch_done(a_consumer text, a_batch_id bigint)
RETURNS boolean LANGUAGE sql AS $$ SELECT pgq_ext.set_batch_done(a_consumer, '', a_batch_id) $$;
