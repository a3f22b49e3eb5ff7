-- Adoption of a PgQ 2.1 installation (Skytools 2.1.x core), after its
-- structure was checked against pgq21.txt: its tables become PgQ 3.5's (as
-- migration 0001 makes them), in place, with every queue, consumer position,
-- tick, pending event and retry event kept. Runs inside the installer's
-- transaction, before adopt.sql and the later migrations.

-- Events a consumer gave up on (2.1's failed_queue, which PgQ 3 dropped) are
-- kept for the dead-letter table, which migration 0002 makes; the installer
-- moves them there after the migrations.
CREATE TEMP TABLE pgqgo_adopt21_failed ON COMMIT DROP AS
SELECT q.queue_name AS dl_queue, c.co_name AS dl_consumer, f.ev_failed_time AS dl_time,
       'PgQ 2.1 failed event: ' || coalesce(f.ev_failed_reason, '(no reason given)') AS dl_reason,
       f.ev_id, f.ev_time, f.ev_txid, f.ev_retry, f.ev_type, f.ev_data,
       f.ev_extra1, f.ev_extra2, f.ev_extra3, f.ev_extra4
  FROM pgq.failed_queue f
  JOIN pgq.subscription s ON s.sub_id = f.ev_owner
  JOIN pgq.queue q ON q.queue_id = s.sub_queue
  JOIN pgq.consumer c ON c.co_id = s.sub_consumer;
DROP TABLE pgq.failed_queue;

-- 2.1's functions go (pgqgo's are loaded next), and the types only they
-- returned; the trigger functions stay, to be replaced in place, so the
-- triggers of every table that uses them keep working.
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid FROM pg_catalog.pg_proc p
              WHERE p.pronamespace = 'pgq'::regnamespace AND p.prorettype <> 'trigger'::regtype LOOP
        EXECUTE 'DROP FUNCTION ' || f::text;
    END LOOP;
END
$$;
DROP TYPE pgq.ret_batch_event, pgq.ret_batch_info, pgq.ret_consumer_info, pgq.ret_queue_info;

ALTER TABLE pgq.consumer ALTER COLUMN co_name DROP DEFAULT;

-- pgq.queue in PgQ 3.5's column order, with its new columns at their defaults
ALTER TABLE pgq.subscription DROP CONSTRAINT sub_queue_fkey;
ALTER TABLE pgq.tick DROP CONSTRAINT tick_queue_fkey;
ALTER TABLE pgq.queue RENAME TO queue_21;
ALTER TABLE pgq.queue_21 RENAME CONSTRAINT queue_pkey TO queue_21_pkey;
ALTER TABLE pgq.queue_21 RENAME CONSTRAINT queue_name_uq TO queue_21_name_uq;
CREATE TABLE pgq.queue (
    queue_id                 integer     NOT NULL DEFAULT nextval('pgq.queue_queue_id_seq'::regclass),
    queue_name               text        NOT NULL,
    queue_ntables            integer     NOT NULL DEFAULT 3,
    queue_cur_table          integer     NOT NULL DEFAULT 0,
    queue_rotation_period    interval    NOT NULL DEFAULT '2 hours',
    queue_switch_step1       bigint      NOT NULL DEFAULT txid_current(),
    queue_switch_step2       bigint               DEFAULT txid_current(),
    queue_switch_time        timestamptz NOT NULL DEFAULT now(),
    queue_external_ticker    boolean     NOT NULL DEFAULT false,
    queue_disable_insert     boolean     NOT NULL DEFAULT false,
    queue_ticker_paused      boolean     NOT NULL DEFAULT false,
    queue_ticker_max_count   integer     NOT NULL DEFAULT 500,
    queue_ticker_max_lag     interval    NOT NULL DEFAULT '3 seconds',
    queue_ticker_idle_period interval    NOT NULL DEFAULT '1 minute',
    queue_per_tx_limit       integer,
    queue_data_pfx           text        NOT NULL,
    queue_event_seq          text        NOT NULL,
    queue_tick_seq           text        NOT NULL,
    queue_extra_maint        text[],
    CONSTRAINT queue_pkey PRIMARY KEY (queue_id),
    CONSTRAINT queue_name_uq UNIQUE (queue_name)
);
INSERT INTO pgq.queue (queue_id, queue_name, queue_ntables, queue_cur_table, queue_rotation_period,
                       queue_switch_step1, queue_switch_step2, queue_switch_time, queue_external_ticker,
                       queue_ticker_max_count, queue_ticker_max_lag, queue_ticker_idle_period,
                       queue_data_pfx, queue_event_seq, queue_tick_seq)
SELECT queue_id, queue_name, queue_ntables, queue_cur_table, queue_rotation_period,
       queue_switch_step1, queue_switch_step2, queue_switch_time, queue_external_ticker,
       queue_ticker_max_count, queue_ticker_max_lag, queue_ticker_idle_period,
       queue_data_pfx, queue_event_seq, queue_tick_seq
  FROM pgq.queue_21;
ALTER SEQUENCE pgq.queue_queue_id_seq OWNED BY pgq.queue.queue_id;
DROP TABLE pgq.queue_21;
ALTER TABLE pgq.subscription ADD CONSTRAINT sub_queue_fkey FOREIGN KEY (sub_queue) REFERENCES pgq.queue (queue_id);
ALTER TABLE pgq.tick ADD CONSTRAINT tick_queue_fkey FOREIGN KEY (tick_queue) REFERENCES pgq.queue (queue_id);

-- pgq.retry_queue names its queue (ev_queue) and is keyed to no subscription id
ALTER TABLE pgq.retry_queue RENAME TO retry_queue_21;
ALTER TABLE pgq.retry_queue_21 RENAME CONSTRAINT rq_pkey TO retry_queue_21_pkey;
ALTER INDEX pgq.rq_retry_idx RENAME TO retry_queue_21_retry_idx;
CREATE TABLE pgq.retry_queue (
    ev_retry_after timestamptz NOT NULL,
    ev_queue       integer     NOT NULL,
    LIKE pgq.event_template,
    CONSTRAINT rq_pkey PRIMARY KEY (ev_owner, ev_id),
    CONSTRAINT rq_queue_id_fkey FOREIGN KEY (ev_queue) REFERENCES pgq.queue (queue_id)
);
ALTER TABLE pgq.retry_queue ALTER COLUMN ev_owner SET NOT NULL;
ALTER TABLE pgq.retry_queue ALTER COLUMN ev_txid DROP NOT NULL;
CREATE INDEX rq_retry_idx ON pgq.retry_queue (ev_retry_after);
INSERT INTO pgq.retry_queue (ev_retry_after, ev_queue, ev_id, ev_time, ev_txid, ev_owner, ev_retry,
                             ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4)
SELECT r.ev_retry_after, s.sub_queue, r.ev_id, r.ev_time, r.ev_txid, r.ev_owner, r.ev_retry,
       r.ev_type, r.ev_data, r.ev_extra1, r.ev_extra2, r.ev_extra3, r.ev_extra4
  FROM pgq.retry_queue_21 r JOIN pgq.subscription s ON s.sub_id = r.ev_owner;
DROP TABLE pgq.retry_queue_21;

-- pgq.subscription: keyed by queue and consumer, one row per open batch
ALTER TABLE pgq.subscription DROP CONSTRAINT subscription_ukey;
ALTER TABLE pgq.subscription DROP CONSTRAINT subscription_pkey;
ALTER TABLE pgq.subscription ADD CONSTRAINT subscription_pkey PRIMARY KEY (sub_queue, sub_consumer);
ALTER TABLE pgq.subscription ADD CONSTRAINT subscription_batch_idx UNIQUE (sub_batch);
ALTER TABLE pgq.subscription ALTER COLUMN sub_last_tick DROP NOT NULL;

-- pgq.tick gets tick_event_seq. 2.1 did not record the event sequence at a
-- tick; batches do not need it (a batch is the difference of two tick
-- snapshots), only counts do (pending events, ticker_max_count, batch
-- sizes when catching up). Each old tick gets the id of the last event whose
-- transaction its snapshot saw finished (an estimate: ids and txids are not
-- in the same order when transactions overlap), never less than an earlier
-- tick's.
ALTER TABLE pgq.tick ADD COLUMN tick_event_seq bigint;
DO $$
DECLARE
    q record;
BEGIN
    FOR q IN SELECT queue_id, queue_data_pfx FROM pgq.queue LOOP
        EXECUTE format('UPDATE pgq.tick t SET tick_event_seq = coalesce((SELECT e.ev_id FROM %s e
                          WHERE e.ev_txid < pg_catalog.txid_snapshot_xmin(t.tick_snapshot)
                          ORDER BY e.ev_txid DESC LIMIT 1), 0)
                         WHERE t.tick_queue = $1',
                       pg_catalog.quote_ident(split_part(q.queue_data_pfx, '.', 1)) || '.'
                       || pg_catalog.quote_ident(split_part(q.queue_data_pfx, '.', 2)))
        USING q.queue_id;
    END LOOP;
END
$$;
UPDATE pgq.tick t SET tick_event_seq = m.seq
  FROM (SELECT tick_queue, tick_id, max(tick_event_seq) OVER (PARTITION BY tick_queue ORDER BY tick_id) AS seq
          FROM pgq.tick) m
 WHERE m.tick_queue = t.tick_queue AND m.tick_id = t.tick_id AND m.seq <> t.tick_event_seq;
ALTER TABLE pgq.tick ALTER COLUMN tick_event_seq SET NOT NULL;
