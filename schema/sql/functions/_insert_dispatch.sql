-- pgq._insert_dispatch(...): placeholder body; pgq._refresh_insert_dispatch()
-- replaces it with one static INSERT per event table of every queue. Returns
-- the new event id, or NULL when the queue/table is not known to it.
CREATE OR REPLACE FUNCTION pgq._insert_dispatch(i_queue_id integer, i_table integer, i_ev_id bigint,
        i_ev_time timestamptz, i_ev_txid bigint, i_ev_owner integer, i_ev_retry integer, i_ev_type text,
        i_ev_data text, i_ev_extra1 text, i_ev_extra2 text, i_ev_extra3 text, i_ev_extra4 text)
RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
    RETURN NULL;
END
$$;

-- pgq._insert_bulk_dispatch(...): placeholder, regenerated like
-- _insert_dispatch; one static INSERT ... SELECT FROM unnest(...) per event
-- table. Returns the number of rows inserted, or NULL for an unknown queue.
CREATE OR REPLACE FUNCTION pgq._insert_bulk_dispatch(i_queue_id integer, i_table integer, i_ev_txid bigint,
        i_types text[], i_datas text[], i_extra1 text[], i_extra2 text[], i_extra3 text[], i_extra4 text[])
RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
    RETURN NULL;
END
$$;
