-- pgq._count_tx_event(queue id, name, limit, txid): enforce queue_per_tx_limit.
-- The count lives in a transaction-local setting, so it vanishes at commit or
-- rollback and costs nothing for queues without a limit.
CREATE OR REPLACE FUNCTION pgq._count_tx_event(i_queue_id integer, i_queue_name text, i_limit integer, i_txid bigint)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_name  text := 'pgqgo.tx_events_' || i_queue_id;
    v_count integer := coalesce(nullif(current_setting(v_name, true), ''), '0')::integer + 1;
BEGIN
    IF v_count > i_limit THEN
        RAISE EXCEPTION 'Queue ''%'' allows max % events from one TX', i_queue_name, i_limit USING ERRCODE = 'XX000';
    END IF;
    PERFORM set_config(v_name, v_count::text, true);
END
$$;
