-- A PgQ 2.1 installation (Skytools 2.1.x core, pgq.version() 2.1.8) for the
-- adoption tests, written for this project from the catalogue facts in
-- ../shared/reference/pgq-2.1-catalogue.md: the tables, constraints and
-- types exactly as listed there, and the functions a 2.1 producer, consumer
-- and pgqadm.py ticker call, with 2.1's signatures and behaviour. The C
-- functions bind to Debian's postgresql-15-pgq3 libraries, as a real 2.1
-- install does on PostgreSQL 15.
CREATE SCHEMA pgq;

CREATE TABLE pgq.consumer (
    co_id   serial PRIMARY KEY,
    co_name text NOT NULL DEFAULT 'fooz'
);
ALTER TABLE pgq.consumer ADD CONSTRAINT consumer_name_uq UNIQUE (co_name);

CREATE TABLE pgq.queue (
    queue_id                 serial PRIMARY KEY,
    queue_name               text NOT NULL,
    queue_ntables            integer NOT NULL DEFAULT 3,
    queue_cur_table          integer NOT NULL DEFAULT 0,
    queue_rotation_period    interval NOT NULL DEFAULT '2 hours',
    queue_switch_step1       bigint NOT NULL DEFAULT txid_current(),
    queue_switch_step2       bigint DEFAULT txid_current(),
    queue_switch_time        timestamptz NOT NULL DEFAULT now(),
    queue_external_ticker    boolean NOT NULL DEFAULT false,
    queue_ticker_max_count   integer NOT NULL DEFAULT 500,
    queue_ticker_max_lag     interval NOT NULL DEFAULT '3 seconds',
    queue_ticker_idle_period interval NOT NULL DEFAULT '1 minute',
    queue_data_pfx           text NOT NULL,
    queue_event_seq          text NOT NULL,
    queue_tick_seq           text NOT NULL
);
ALTER TABLE pgq.queue ADD CONSTRAINT queue_name_uq UNIQUE (queue_name);

CREATE TABLE pgq.tick (
    tick_queue    integer NOT NULL,
    tick_id       bigint NOT NULL,
    tick_time     timestamptz NOT NULL DEFAULT now(),
    tick_snapshot txid_snapshot NOT NULL DEFAULT txid_current_snapshot(),
    CONSTRAINT tick_pkey PRIMARY KEY (tick_queue, tick_id),
    CONSTRAINT tick_queue_fkey FOREIGN KEY (tick_queue) REFERENCES pgq.queue (queue_id)
);

CREATE SEQUENCE pgq.batch_id_seq;

CREATE TABLE pgq.subscription (
    sub_id        serial NOT NULL,
    sub_queue     integer NOT NULL,
    sub_consumer  integer NOT NULL,
    sub_last_tick bigint NOT NULL,
    sub_active    timestamptz NOT NULL DEFAULT now(),
    sub_batch     bigint,
    sub_next_tick bigint,
    CONSTRAINT subscription_pkey PRIMARY KEY (sub_id),
    CONSTRAINT subscription_ukey UNIQUE (sub_queue, sub_consumer),
    CONSTRAINT sub_queue_fkey FOREIGN KEY (sub_queue) REFERENCES pgq.queue (queue_id),
    CONSTRAINT sub_consumer_fkey FOREIGN KEY (sub_consumer) REFERENCES pgq.consumer (co_id)
);

CREATE TABLE pgq.event_template (
    ev_id     bigint NOT NULL,
    ev_time   timestamptz NOT NULL,
    ev_txid   bigint NOT NULL DEFAULT txid_current(),
    ev_owner  integer,
    ev_retry  integer,
    ev_type   text,
    ev_data   text,
    ev_extra1 text,
    ev_extra2 text,
    ev_extra3 text,
    ev_extra4 text
);

CREATE TABLE pgq.retry_queue (
    ev_retry_after timestamptz NOT NULL,
    LIKE pgq.event_template,
    CONSTRAINT rq_pkey PRIMARY KEY (ev_owner, ev_id),
    CONSTRAINT rq_owner_fkey FOREIGN KEY (ev_owner) REFERENCES pgq.subscription (sub_id)
);
ALTER TABLE pgq.retry_queue ALTER COLUMN ev_owner SET NOT NULL;
ALTER TABLE pgq.retry_queue ALTER COLUMN ev_txid DROP NOT NULL;
ALTER TABLE pgq.retry_queue ALTER COLUMN ev_txid DROP DEFAULT;
CREATE INDEX rq_retry_idx ON pgq.retry_queue (ev_retry_after);
CREATE INDEX rq_retry_owner_idx ON pgq.retry_queue (ev_owner, ev_id);

CREATE TABLE pgq.failed_queue (
    ev_failed_reason text,
    ev_failed_time   timestamptz NOT NULL,
    LIKE pgq.event_template,
    CONSTRAINT fq_pkey PRIMARY KEY (ev_owner, ev_id),
    CONSTRAINT fq_owner_fkey FOREIGN KEY (ev_owner) REFERENCES pgq.subscription (sub_id)
);
ALTER TABLE pgq.failed_queue ALTER COLUMN ev_owner SET NOT NULL;
ALTER TABLE pgq.failed_queue ALTER COLUMN ev_txid DROP NOT NULL;
ALTER TABLE pgq.failed_queue ALTER COLUMN ev_txid DROP DEFAULT;

CREATE TYPE pgq.ret_batch_event AS (ev_id bigint, ev_time timestamptz, ev_txid bigint, ev_retry integer,
    ev_type text, ev_data text, ev_extra1 text, ev_extra2 text, ev_extra3 text, ev_extra4 text);
CREATE TYPE pgq.ret_batch_info AS (queue_name text, consumer_name text, batch_start timestamptz,
    batch_end timestamptz, prev_tick_id bigint, tick_id bigint, lag interval);
CREATE TYPE pgq.ret_consumer_info AS (queue_name text, consumer_name text, lag interval, last_seen interval,
    last_tick bigint, current_batch bigint, next_tick bigint);
CREATE TYPE pgq.ret_queue_info AS (queue_name text, queue_ntables integer, queue_cur_table integer,
    queue_rotation_period interval, queue_switch_time timestamptz, queue_external_ticker boolean,
    queue_ticker_max_count integer, queue_ticker_max_lag interval, queue_ticker_idle_period interval,
    ticker_lag interval);

CREATE FUNCTION pgq.version() RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    RETURN '2.1.8';
END $$;

-- the C functions of pgq_lowlevel and pgq_triggers
CREATE FUNCTION pgq.insert_event_raw(queue_name text, ev_id bigint, ev_time timestamptz, ev_owner integer,
    ev_retry integer, ev_type text, ev_data text, ev_extra1 text, ev_extra2 text, ev_extra3 text, ev_extra4 text)
RETURNS bigint AS '$libdir/pgq_lowlevel', 'pgq_insert_event_raw' LANGUAGE C;
CREATE FUNCTION pgq.logtriga() RETURNS trigger AS '$libdir/pgq_triggers', 'pgq_logtriga' LANGUAGE C;
CREATE FUNCTION pgq.sqltriga() RETURNS trigger AS '$libdir/pgq_triggers', 'pgq_sqltriga' LANGUAGE C;
CREATE FUNCTION pgq.logutriga() RETURNS trigger AS '$libdir/pgq_triggers', 'pgq_logutriga' LANGUAGE C;

CREATE FUNCTION pgq.insert_event(queue_name text, ev_type text, ev_data text)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    RETURN pgq.insert_event(queue_name, ev_type, ev_data, NULL, NULL, NULL, NULL);
END $$;

CREATE FUNCTION pgq.insert_event(queue_name text, ev_type text, ev_data text,
    ev_extra1 text, ev_extra2 text, ev_extra3 text, ev_extra4 text)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    RETURN pgq.insert_event_raw(queue_name, NULL, now(), NULL, NULL,
        ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4);
END $$;

CREATE FUNCTION pgq.create_queue(i_queue_name text) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    qid integer;
    pfx text;
    tbl text;
BEGIN
    IF EXISTS (SELECT 1 FROM pgq.queue WHERE queue_name = i_queue_name) THEN
        RETURN 0;
    END IF;
    qid := nextval('pgq.queue_queue_id_seq');
    pfx := 'pgq.event_' || qid;
    INSERT INTO pgq.queue (queue_id, queue_name, queue_data_pfx, queue_event_seq, queue_tick_seq)
    VALUES (qid, i_queue_name, pfx, pfx || '_id_seq', pfx || '_tick_seq');
    EXECUTE 'CREATE SEQUENCE ' || pfx || '_id_seq';
    EXECUTE 'CREATE SEQUENCE ' || pfx || '_tick_seq';
    EXECUTE 'CREATE TABLE ' || pfx || ' () INHERITS (pgq.event_template)';
    FOR i IN 0 .. 2 LOOP
        tbl := pfx || '_' || i;
        EXECUTE 'CREATE TABLE ' || tbl || ' () INHERITS (' || pfx || ')';
        EXECUTE 'ALTER TABLE ' || tbl || ' ALTER COLUMN ev_id SET DEFAULT nextval(' || quote_literal(pfx || '_id_seq') || ')';
        EXECUTE 'CREATE INDEX event_' || qid || '_' || i || '_txid_idx ON ' || tbl || ' (ev_txid)';
    END LOOP;
    PERFORM pgq.ticker(i_queue_name);
    RETURN 1;
END $$;

CREATE FUNCTION pgq.ticker(i_queue_name text, i_tick_id bigint) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    INSERT INTO pgq.tick (tick_queue, tick_id)
    SELECT queue_id, i_tick_id FROM pgq.queue WHERE queue_name = i_queue_name AND queue_external_ticker;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'queue % not found or ticker not external', i_queue_name;
    END IF;
    RETURN i_tick_id;
END $$;

-- 2.1's ticker(queue) ticks whenever asked (the ticker daemon decides when)
CREATE FUNCTION pgq.ticker(i_queue_name text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    res bigint;
    q   record;
BEGIN
    SELECT queue_id, queue_tick_seq, queue_external_ticker INTO q FROM pgq.queue WHERE queue_name = i_queue_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no such queue';
    END IF;
    IF q.queue_external_ticker THEN
        RAISE EXCEPTION 'This queue has external tick source.';
    END IF;
    INSERT INTO pgq.tick (tick_queue, tick_id) VALUES (q.queue_id, nextval(q.queue_tick_seq))
    RETURNING tick_id INTO res;
    RETURN res;
END $$;

CREATE FUNCTION pgq.ticker() RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    n bigint := 0;
    q text;
BEGIN
    FOR q IN SELECT queue_name FROM pgq.queue WHERE NOT queue_external_ticker ORDER BY queue_id LOOP
        PERFORM pgq.ticker(q);
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;

CREATE FUNCTION pgq.register_consumer(x_queue_name text, x_consumer_id text) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    RETURN pgq.register_consumer(x_queue_name, x_consumer_id, NULL);
END $$;

CREATE FUNCTION pgq.register_consumer(x_queue_name text, x_consumer_name text, x_tick_pos bigint) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    qid  integer;
    cid  integer;
    pos  bigint;
BEGIN
    SELECT queue_id INTO qid FROM pgq.queue WHERE queue_name = x_queue_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'Event queue not created yet';
    END IF;
    SELECT co_id INTO cid FROM pgq.consumer WHERE co_name = x_consumer_name;
    IF NOT FOUND THEN
        INSERT INTO pgq.consumer (co_name) VALUES (x_consumer_name) RETURNING co_id INTO cid;
    END IF;
    IF EXISTS (SELECT 1 FROM pgq.subscription WHERE sub_queue = qid AND sub_consumer = cid) THEN
        RETURN 0;
    END IF;
    pos := coalesce(x_tick_pos, (SELECT max(tick_id) FROM pgq.tick WHERE tick_queue = qid));
    INSERT INTO pgq.subscription (sub_queue, sub_consumer, sub_last_tick) VALUES (qid, cid, pos);
    RETURN 1;
END $$;

CREATE FUNCTION pgq.next_batch(x_queue_name text, x_consumer_name text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    s    record;
    nxt  bigint;
BEGIN
    SELECT sub.sub_id, sub.sub_queue, sub.sub_last_tick, sub.sub_batch INTO s
      FROM pgq.subscription sub
      JOIN pgq.queue q ON q.queue_id = sub.sub_queue
      JOIN pgq.consumer c ON c.co_id = sub.sub_consumer
     WHERE q.queue_name = x_queue_name AND c.co_name = x_consumer_name
       FOR UPDATE OF sub;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'Not subscriber to queue: %/%', x_queue_name, x_consumer_name;
    END IF;
    IF s.sub_batch IS NOT NULL THEN
        RETURN s.sub_batch;
    END IF;
    SELECT min(tick_id) INTO nxt FROM pgq.tick WHERE tick_queue = s.sub_queue AND tick_id > s.sub_last_tick;
    IF nxt IS NULL THEN
        RETURN NULL;
    END IF;
    UPDATE pgq.subscription SET sub_batch = nextval('pgq.batch_id_seq'), sub_next_tick = nxt, sub_active = now()
     WHERE sub_id = s.sub_id;
    RETURN currval('pgq.batch_id_seq');
END $$;

CREATE FUNCTION pgq.batch_event_sql(x_batch_id bigint) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    b record;
BEGIN
    SELECT s.sub_id, q.queue_data_pfx, p.tick_snapshot AS prev, c.tick_snapshot AS cur INTO b
      FROM pgq.subscription s
      JOIN pgq.queue q ON q.queue_id = s.sub_queue
      JOIN pgq.tick p ON p.tick_queue = s.sub_queue AND p.tick_id = s.sub_last_tick
      JOIN pgq.tick c ON c.tick_queue = s.sub_queue AND c.tick_id = s.sub_next_tick
     WHERE s.sub_batch = x_batch_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'batch not found';
    END IF;
    RETURN 'select ev_id, ev_time, ev_txid, ev_retry, ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4'
        || ' from ' || b.queue_data_pfx
        || ' where ev_txid >= ' || txid_snapshot_xmin(b.prev)
        || ' and ev_txid <= ' || txid_snapshot_xmax(b.cur)
        || ' and txid_visible_in_snapshot(ev_txid, ' || quote_literal(b.cur::text) || ')'
        || ' and not txid_visible_in_snapshot(ev_txid, ' || quote_literal(b.prev::text) || ')'
        || ' and (ev_owner is null or ev_owner = ' || b.sub_id || ') order by 1';
END $$;

CREATE FUNCTION pgq.get_batch_events(x_batch_id bigint) RETURNS SETOF pgq.ret_batch_event
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE pgq.batch_event_sql(x_batch_id);
END $$;

CREATE FUNCTION pgq.finish_batch(x_batch_id bigint) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    UPDATE pgq.subscription SET sub_active = now(), sub_last_tick = sub_next_tick, sub_next_tick = NULL, sub_batch = NULL
     WHERE sub_batch = x_batch_id;
    IF NOT FOUND THEN
        RAISE WARNING 'finish_batch: batch % not found', x_batch_id;
        RETURN 0;
    END IF;
    RETURN 1;
END $$;

CREATE FUNCTION pgq.event_retry(x_batch_id bigint, x_event_id bigint, x_retry_seconds integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    INSERT INTO pgq.retry_queue (ev_retry_after, ev_id, ev_time, ev_txid, ev_owner, ev_retry, ev_type, ev_data,
                                 ev_extra1, ev_extra2, ev_extra3, ev_extra4)
    SELECT now() + x_retry_seconds * interval '1 second', e.ev_id, e.ev_time, NULL, s.sub_id, coalesce(e.ev_retry, 0) + 1,
           e.ev_type, e.ev_data, e.ev_extra1, e.ev_extra2, e.ev_extra3, e.ev_extra4
      FROM pgq.get_batch_events(x_batch_id) e, pgq.subscription s
     WHERE e.ev_id = x_event_id AND s.sub_batch = x_batch_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'event not found';
    END IF;
    RETURN 1;
END $$;

CREATE FUNCTION pgq.event_failed(x_batch_id bigint, x_event_id bigint, x_reason text) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    INSERT INTO pgq.failed_queue (ev_failed_reason, ev_failed_time, ev_id, ev_time, ev_txid, ev_owner, ev_retry,
                                  ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4)
    SELECT x_reason, now(), e.ev_id, e.ev_time, NULL, s.sub_id, e.ev_retry,
           e.ev_type, e.ev_data, e.ev_extra1, e.ev_extra2, e.ev_extra3, e.ev_extra4
      FROM pgq.get_batch_events(x_batch_id) e, pgq.subscription s
     WHERE e.ev_id = x_event_id AND s.sub_batch = x_batch_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'event not found';
    END IF;
    RETURN 1;
END $$;

CREATE FUNCTION pgq.failed_event_count(x_queue_name text, x_consumer_name text) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    RETURN (SELECT count(*) FROM pgq.failed_queue f
              JOIN pgq.subscription s ON s.sub_id = f.ev_owner
              JOIN pgq.queue q ON q.queue_id = s.sub_queue
              JOIN pgq.consumer c ON c.co_id = s.sub_consumer
             WHERE q.queue_name = x_queue_name AND c.co_name = x_consumer_name);
END $$;

-- due retries go back into the queue's current table, for their owner only
CREATE FUNCTION pgq.maint_retry_events() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    n integer := 0;
BEGIN
    FOR r IN SELECT rq.*, q.queue_name FROM pgq.retry_queue rq
               JOIN pgq.subscription s ON s.sub_id = rq.ev_owner
               JOIN pgq.queue q ON q.queue_id = s.sub_queue
              WHERE rq.ev_retry_after <= now() LIMIT 10 LOOP
        PERFORM pgq.insert_event_raw(r.queue_name, r.ev_id, r.ev_time, r.ev_owner, r.ev_retry,
                                     r.ev_type, r.ev_data, r.ev_extra1, r.ev_extra2, r.ev_extra3, r.ev_extra4);
        DELETE FROM pgq.retry_queue WHERE ev_owner = r.ev_owner AND ev_id = r.ev_id;
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;
