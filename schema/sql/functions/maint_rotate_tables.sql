-- pgq.maint_rotate_tables_step1(queue): switch the queue to its next event
-- table when rotation_period has passed since the last switch, the previous
-- switch is complete (step 2 done) and every consumer has moved past it. The
-- next table is emptied with TRUNCATE first: no deletes, no dead tuples.
-- When another transaction holds a lock on that table the rotation is put
-- off (with a warning) instead of waiting for it. Returns 0 (PgQ 3.5 returns 0 whether or not it rotated).
CREATE OR REPLACE FUNCTION pgq.maint_rotate_tables_step1(i_queue_name text)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    q      record;
    v_next integer;
BEGIN
    SELECT queue_id, queue_cur_table, queue_ntables, queue_data_pfx, queue_switch_step1, queue_switch_step2,
           queue_switch_time, queue_rotation_period
      INTO q FROM pgq.queue WHERE queue_name = i_queue_name FOR UPDATE;
    IF NOT FOUND OR q.queue_switch_step2 IS NULL
       OR q.queue_switch_time + q.queue_rotation_period > now() THEN
        RETURN 0;
    END IF;
    -- a consumer whose position does not yet include every transaction of the
    -- previous switch may still need the table that would be emptied
    PERFORM 1 FROM pgq.subscription s
      JOIN pgq.tick t ON t.tick_queue = s.sub_queue AND t.tick_id = s.sub_last_tick
     WHERE s.sub_queue = q.queue_id AND txid_snapshot_xmin(t.tick_snapshot) <= q.queue_switch_step2
     LIMIT 1;
    IF FOUND THEN
        RETURN 0;
    END IF;
    -- a consumer positioned at a vanished tick blocks rotation as well
    PERFORM 1 FROM pgq.subscription s
     WHERE s.sub_queue = q.queue_id
       AND NOT EXISTS (SELECT 1 FROM pgq.tick t WHERE t.tick_queue = s.sub_queue AND t.tick_id = s.sub_last_tick)
     LIMIT 1;
    IF FOUND THEN
        RETURN 0;
    END IF;
    v_next := (q.queue_cur_table + 1) % q.queue_ntables;
    -- TRUNCATE must not wait: a lock on the table (pg_dump holds one on every
    -- table for its whole run) would stall the caller, and a ticker daemon
    -- ticks on the same connection. Busy: rotate at a later round.
    BEGIN
        EXECUTE 'LOCK TABLE ' || pgq.quote_fqname(q.queue_data_pfx || '_' || v_next) || ' IN ACCESS EXCLUSIVE MODE NOWAIT';
    EXCEPTION WHEN lock_not_available THEN
        RAISE WARNING 'rotation of queue % postponed: table %_% is locked by another transaction',
                      i_queue_name, q.queue_data_pfx, v_next;
        RETURN 0;
    END;
    EXECUTE 'TRUNCATE ' || pgq.quote_fqname(q.queue_data_pfx || '_' || v_next);
    -- the ticks go with their events: those taken before the previous switch
    -- (whose events were in the table just emptied), below every
    -- consumer's position, and never the newest one
    DELETE FROM pgq.tick t
     WHERE t.tick_queue = q.queue_id
       AND txid_snapshot_xmin(t.tick_snapshot) < q.queue_switch_step1
       AND t.tick_id < coalesce((SELECT min(s.sub_last_tick) FROM pgq.subscription s WHERE s.sub_queue = q.queue_id),
                                (SELECT max(l.tick_id) FROM pgq.tick l WHERE l.tick_queue = q.queue_id))
       AND t.tick_id < (SELECT max(l.tick_id) FROM pgq.tick l WHERE l.tick_queue = q.queue_id);
    UPDATE pgq.queue
       SET queue_cur_table = v_next, queue_switch_time = now(),
           queue_switch_step1 = txid_current(), queue_switch_step2 = NULL
     WHERE queue_id = q.queue_id;
    RETURN 0;
END
$$;

-- pgq.maint_rotate_tables_step2(): record, in a transaction of its own after
-- step 1 committed, the txid that closes each pending switch. Returns 0.
CREATE OR REPLACE FUNCTION pgq.maint_rotate_tables_step2()
RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    UPDATE pgq.queue SET queue_switch_step2 = txid_current() WHERE queue_switch_step2 IS NULL;
    -- a queue change that rolled back after taking its generation number left
    -- the sequence ahead of pgq.pgqgo_queue_version (see pgqgo_queue_gen.sql):
    -- catch the table up, unless a change holds its row
    IF to_regclass('pgq.pgqgo_queue_version') IS NOT NULL THEN -- absent below migration 3
        UPDATE pgq.pgqgo_queue_version v SET gen = nextval('pgq.pgqgo_queue_gen')
          FROM (SELECT ctid FROM pgq.pgqgo_queue_version
                 WHERE gen IS DISTINCT FROM pg_sequence_last_value('pgq.pgqgo_queue_gen')
                   FOR UPDATE SKIP LOCKED) behind
         WHERE v.ctid = behind.ctid;
    END IF;
    RETURN 0;
END
$$;
