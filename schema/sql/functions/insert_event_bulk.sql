-- pgq.insert_event_bulk(queue, types[], data[], extra1[]..extra4[]): pgqgo's
-- bulk path (not in PgQ 3.5). Inserts one event per array position in a single
-- statement inside the caller's transaction; NULL arrays mean NULL fields.
-- Non-NULL arrays must all have the same length. Ids are assigned in array
-- order. Returns the number of events inserted. Same checks as insert_event.
CREATE OR REPLACE FUNCTION pgq.insert_event_bulk(queue_name text, ev_type text[], ev_data text[],
        ev_extra1 text[] DEFAULT NULL, ev_extra2 text[] DEFAULT NULL,
        ev_extra3 text[] DEFAULT NULL, ev_extra4 text[] DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_txid  bigint := pg_catalog.txid_current();
    v_n     integer;
    q       record;
    v_count integer;
BEGIN
    SELECT max(l), min(l) INTO v_n, v_count
      FROM unnest(ARRAY[cardinality(ev_type), cardinality(ev_data), cardinality(ev_extra1),
                        cardinality(ev_extra2), cardinality(ev_extra3), cardinality(ev_extra4)]) l;
    IF v_n IS DISTINCT FROM v_count THEN
        RAISE EXCEPTION 'insert_event_bulk: arrays have different lengths (% and %)', v_count, v_n;
    END IF;
    IF insert_event_bulk.queue_name IS NULL THEN
        RAISE EXCEPTION 'Queue name must not be NULL' USING ERRCODE = 'XX000';
    END IF;
    SELECT x.queue_id, x.queue_cur_table, x.queue_disable_insert, x.queue_per_tx_limit, x.queue_event_seq
      INTO q FROM pgq.queue x WHERE x.queue_name = insert_event_bulk.queue_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'No such queue' USING ERRCODE = 'XX000';
    END IF;
    IF q.queue_disable_insert AND current_setting('session_replication_role') <> 'replica' THEN
        RAISE EXCEPTION 'Insert into queue disallowed' USING ERRCODE = 'XX000';
    END IF;
    IF v_n IS NULL OR v_n = 0 THEN
        RETURN 0;
    END IF;
    IF q.queue_per_tx_limit IS NOT NULL THEN
        FOR i IN 1 .. v_n LOOP
            PERFORM pgq._count_tx_event(q.queue_id, insert_event_bulk.queue_name, q.queue_per_tx_limit, v_txid);
        END LOOP;
    END IF;
    v_count := pgq._insert_bulk_dispatch(q.queue_id, q.queue_cur_table, v_txid,
                   ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4);
    IF v_count IS NOT NULL THEN
        RETURN v_count;
    END IF;
    -- a queue the dispatcher does not know yet: plain dynamic SQL
    EXECUTE format('INSERT INTO pgq.%I (ev_id, ev_time, ev_txid, ev_type, ev_data,'
                   ' ev_extra1, ev_extra2, ev_extra3, ev_extra4)'
                   ' SELECT nextval(%L::regclass), now(), $1, u.t, u.d, u.e1, u.e2, u.e3, u.e4'
                   ' FROM unnest($2, $3, $4, $5, $6, $7) AS u(t, d, e1, e2, e3, e4)',
                   'event_' || q.queue_id || '_' || q.queue_cur_table, q.queue_event_seq)
      USING v_txid, ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END
$$;
