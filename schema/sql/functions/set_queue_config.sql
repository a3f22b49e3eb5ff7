-- pgq.set_queue_config(queue, param, value): change one queue setting. The
-- parameter is named with or without its 'queue_' prefix: ticker_max_count,
-- ticker_max_lag, ticker_idle_period, ticker_paused, rotation_period,
-- external_ticker, and (beyond PgQ 3.5, which refuses them) disable_insert and
-- per_tx_limit. The value is cast to the column's type ('' or 'none' clear
-- per_tx_limit: no limit). Returns 1.
CREATE OR REPLACE FUNCTION pgq.set_queue_config(x_queue_name text, x_param_name text, x_param_value text)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_col  text := CASE WHEN x_param_name LIKE 'queue\_%' THEN x_param_name ELSE 'queue_' || x_param_name END;
    v_type text;
    v_neg  boolean;
BEGIN
    IF x_queue_name IS NULL OR x_param_name IS NULL OR x_param_value IS NULL THEN
        RAISE EXCEPTION 'Invalid NULL value'; -- PgQ's wording (for a NULL value it fails in EXECUTE)
    END IF;
    PERFORM 1 FROM pgq.queue WHERE queue_name = x_queue_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'No such event queue';
    END IF;
    v_type := CASE v_col
        WHEN 'queue_ticker_max_count'   THEN 'integer'
        WHEN 'queue_ticker_max_lag'     THEN 'interval'
        WHEN 'queue_ticker_idle_period' THEN 'interval'
        WHEN 'queue_ticker_paused'      THEN 'boolean'
        WHEN 'queue_rotation_period'    THEN 'interval'
        WHEN 'queue_external_ticker'    THEN 'boolean'
        WHEN 'queue_disable_insert'     THEN 'boolean'
        WHEN 'queue_per_tx_limit'       THEN 'integer'
    END;
    IF v_type IS NULL THEN
        RAISE EXCEPTION 'cannot change parameter "%"', x_param_name;
    END IF;
    -- per_tx_limit is the one setting that may be unset (no limit): '' or
    -- 'none' (any case) clear it
    IF v_col = 'queue_per_tx_limit' AND lower(btrim(x_param_value)) IN ('', 'none') THEN
        UPDATE pgq.queue SET queue_per_tx_limit = NULL WHERE queue_name = x_queue_name;
        RETURN 1;
    END IF;
    -- PgQ 3.5 takes a negative count or period; pgqgo refuses it (0 keeps its
    -- meaning: at once, every round)
    IF v_type IN ('integer', 'interval') THEN
        EXECUTE format('SELECT $1::%s < ''0''::%s', v_type, v_type) INTO v_neg USING x_param_value;
        IF v_neg THEN
            RAISE EXCEPTION 'parameter "%" must not be negative: %', x_param_name, x_param_value;
        END IF;
    END IF;
    EXECUTE format('UPDATE pgq.queue SET %I = $1::%s WHERE queue_name = $2', v_col, v_type)
      USING x_param_value, x_queue_name;
    RETURN 1;
END
$$;
