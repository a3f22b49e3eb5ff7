-- pgq.insert_event_raw(queue, id, time, owner, retry, type, data, extra1..4):
-- the one place events enter a queue. A NULL id takes the next value of the
-- queue's event sequence. Raises when the queue is unknown, when inserts are
-- disabled (except for a session_replication_role = replica session, as in
-- PgQ 3.5), or when the transaction passes the queue's per_tx_limit.
--
-- Speed: the INSERT is static SQL inside pgq._insert_dispatch, a function the
-- schema regenerates whenever queues are created or dropped, so every session
-- keeps one cached plan per event table instead of planning dynamic SQL on each
-- call. Queues the dispatcher does not know yet fall back to dynamic SQL.
--
-- The transaction id is taken before the queue row is read: a transaction that
-- still sees the previous event table therefore has a txid below the rotation's
-- step-2 txid, which is what batch_event_tables relies on.
--
-- Not SECURITY DEFINER, but it runs with the owner's rights when the hot
-- paths (insert_event, logutriga's fast path) fall back to it: hence the
-- fixed search_path.
CREATE OR REPLACE FUNCTION pgq.insert_event_raw(queue_name text, ev_id bigint, ev_time timestamptz,
        ev_owner integer, ev_retry integer, ev_type text, ev_data text,
        ev_extra1 text, ev_extra2 text, ev_extra3 text, ev_extra4 text)
RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_txid  bigint := pg_catalog.txid_current();
    v_qid   integer;
    v_table integer;
    v_off   boolean;
    v_limit integer;
    v_seq   text;
    v_want  bigint; -- the id to use; NULL: next from the sequence
    v_id    bigint;
BEGIN
    IF insert_event_raw.queue_name IS NULL THEN
        RAISE EXCEPTION 'Queue name must not be NULL' USING ERRCODE = 'XX000'; -- PgQ's wording and code
    END IF;
    SELECT q.queue_id, q.queue_cur_table, q.queue_disable_insert, q.queue_per_tx_limit, q.queue_event_seq
      INTO v_qid, v_table, v_off, v_limit, v_seq
      FROM pgq.queue q WHERE q.queue_name = insert_event_raw.queue_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'No such queue' USING ERRCODE = 'XX000';
    END IF;
    -- a replica session (londiste applying to a branch queue, which pgq_node
    -- disables for everyone else) may still write, as in PgQ 3.5
    v_off := v_off AND current_setting('session_replication_role') <> 'replica';
    IF v_off OR v_limit IS NOT NULL OR insert_event_raw.ev_id IS NOT NULL THEN
        -- the rare paths. Like PgQ 3.5, every attempt advances the event
        -- sequence, even a refused one or one with its own id (retried and
        -- copied events), so the ticker sees the activity.
        v_want := nextval(v_seq);
        IF v_off THEN
            RAISE EXCEPTION 'Insert into queue disallowed' USING ERRCODE = 'XX000';
        END IF;
        IF v_limit IS NOT NULL THEN
            PERFORM pgq._count_tx_event(v_qid, insert_event_raw.queue_name, v_limit, v_txid);
        END IF;
        v_want := coalesce(insert_event_raw.ev_id, v_want);
    END IF;
    v_id := pgq._insert_dispatch(v_qid, v_table, v_want, insert_event_raw.ev_time, v_txid,
                insert_event_raw.ev_owner, insert_event_raw.ev_retry, insert_event_raw.ev_type,
                insert_event_raw.ev_data, insert_event_raw.ev_extra1, insert_event_raw.ev_extra2,
                insert_event_raw.ev_extra3, insert_event_raw.ev_extra4);
    IF v_id IS NULL THEN
        EXECUTE format('INSERT INTO pgq.%I (ev_id, ev_time, ev_txid, ev_owner, ev_retry, ev_type, ev_data,'
                       ' ev_extra1, ev_extra2, ev_extra3, ev_extra4)'
                       ' VALUES (coalesce($1, nextval(%L)), $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)'
                       ' RETURNING ev_id',
                       'event_' || v_qid || '_' || v_table, 'pgq.event_' || v_qid || '_id_seq')
           INTO v_id
          USING v_want, insert_event_raw.ev_time, v_txid, insert_event_raw.ev_owner,
                insert_event_raw.ev_retry, insert_event_raw.ev_type, insert_event_raw.ev_data,
                insert_event_raw.ev_extra1, insert_event_raw.ev_extra2, insert_event_raw.ev_extra3,
                insert_event_raw.ev_extra4;
    END IF;
    RETURN v_id;
END
$$;
