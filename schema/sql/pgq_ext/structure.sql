-- pgq_ext: exactly-once bookkeeping, installed in the database a consumer
-- writes to. Every table is keyed by consumer and sub-consumer ('' when the
-- consumer has none).
CREATE SCHEMA IF NOT EXISTS pgq_ext;

-- the last batch a consumer applied
CREATE TABLE IF NOT EXISTS pgq_ext.completed_batch (
    consumer_id    text   NOT NULL,
    subconsumer_id text   NOT NULL,
    last_batch_id  bigint NOT NULL,
    PRIMARY KEY (consumer_id, subconsumer_id)
);

-- the last tick a consumer applied (tick-based tracking)
CREATE TABLE IF NOT EXISTS pgq_ext.completed_tick (
    consumer_id    text   NOT NULL,
    subconsumer_id text   NOT NULL,
    last_tick_id   bigint NOT NULL,
    PRIMARY KEY (consumer_id, subconsumer_id)
);

-- events already applied from the batch in progress
CREATE TABLE IF NOT EXISTS pgq_ext.completed_event (
    consumer_id    text   NOT NULL,
    subconsumer_id text   NOT NULL,
    batch_id       bigint NOT NULL,
    event_id       bigint NOT NULL,
    PRIMARY KEY (consumer_id, subconsumer_id, batch_id, event_id)
);

-- the batch whose events completed_event holds
CREATE TABLE IF NOT EXISTS pgq_ext.partial_batch (
    consumer_id    text   NOT NULL,
    subconsumer_id text   NOT NULL,
    cur_batch_id   bigint NOT NULL,
    PRIMARY KEY (consumer_id, subconsumer_id)
);

-- pgq_ext 3.0 (Skytools 3.0/3.1) kept one row per consumer: its tables have
-- no subconsumer_id. Such a schema is brought to this layout in place, rows
-- kept, each as the consumer's own ('' sub-consumer); the new column comes
-- last in an upgraded table (the functions name their columns).
DO $upgrade$
DECLARE
    t    text;
    v_pk text;
BEGIN
    FOREACH t IN ARRAY ARRAY['completed_batch', 'completed_tick', 'completed_event', 'partial_batch'] LOOP
        CONTINUE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                               WHERE a.attrelid = pg_catalog.format('pgq_ext.%I', t)::regclass
                                 AND a.attname = 'subconsumer_id' AND NOT a.attisdropped);
        RAISE NOTICE 'pgq_ext.%: adding subconsumer_id (pgq_ext 3.0 layout), rows kept', t;
        EXECUTE pg_catalog.format('ALTER TABLE pgq_ext.%I ADD COLUMN subconsumer_id text NOT NULL DEFAULT %L', t, '');
        EXECUTE pg_catalog.format('ALTER TABLE pgq_ext.%I ALTER COLUMN subconsumer_id DROP DEFAULT', t);
        SELECT c.conname INTO v_pk FROM pg_catalog.pg_constraint c
         WHERE c.conrelid = pg_catalog.format('pgq_ext.%I', t)::regclass AND c.contype = 'p';
        IF v_pk IS NOT NULL THEN
            EXECUTE pg_catalog.format('ALTER TABLE pgq_ext.%I DROP CONSTRAINT %I', t, v_pk);
        END IF;
        EXECUTE pg_catalog.format('ALTER TABLE pgq_ext.%I ADD PRIMARY KEY (%s)', t,
                                  CASE t WHEN 'completed_event' THEN 'consumer_id, subconsumer_id, batch_id, event_id'
                                         ELSE 'consumer_id, subconsumer_id' END);
    END LOOP;
END
$upgrade$;
