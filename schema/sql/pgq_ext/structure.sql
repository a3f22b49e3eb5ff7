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
