-- pgq_ext.get_last_tick(consumer [, subconsumer]): the last tick recorded by
-- set_last_tick, or NULL.
CREATE OR REPLACE FUNCTION pgq_ext.get_last_tick(a_consumer text, a_subconsumer text)
RETURNS bigint LANGUAGE sql AS $$
    SELECT last_tick_id FROM pgq_ext.completed_tick
     WHERE consumer_id = a_consumer AND subconsumer_id = a_subconsumer
$$;

CREATE OR REPLACE FUNCTION pgq_ext.get_last_tick(a_consumer text)
RETURNS bigint LANGUAGE sql AS $$ SELECT pgq_ext.get_last_tick(a_consumer, '') $$;

-- pgq_ext.set_last_tick(consumer [, subconsumer], tick): record the tick the
-- consumer has applied up to; NULL forgets the consumer. Returns 1.
CREATE OR REPLACE FUNCTION pgq_ext.set_last_tick(a_consumer text, a_subconsumer text, a_tick_id bigint)
RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    IF a_tick_id IS NULL THEN
        DELETE FROM pgq_ext.completed_tick WHERE consumer_id = a_consumer AND subconsumer_id = a_subconsumer;
    ELSE
        INSERT INTO pgq_ext.completed_tick (consumer_id, subconsumer_id, last_tick_id)
        VALUES (a_consumer, a_subconsumer, a_tick_id)
        ON CONFLICT (consumer_id, subconsumer_id) DO UPDATE SET last_tick_id = excluded.last_tick_id;
    END IF;
    RETURN 1;
END
$$;

CREATE OR REPLACE FUNCTION pgq_ext.set_last_tick(a_consumer text, a_tick_id bigint)
RETURNS integer LANGUAGE sql AS $$ SELECT pgq_ext.set_last_tick(a_consumer, '', a_tick_id) $$;
