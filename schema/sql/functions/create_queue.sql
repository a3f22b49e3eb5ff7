-- pgq.create_queue(name): create a queue with its three rotating event tables
-- (pgq.event_<id>_0..2, children of pgq.event_<id>), their ev_txid indexes,
-- the event and tick sequences, the grants, and the first tick.
-- Returns 1 when created, 0 when the queue already exists.
CREATE OR REPLACE FUNCTION pgq.create_queue(i_queue_name text)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_id     integer;
    v_pfx    text;
    v_parent text;
    v_child  text;
BEGIN
    IF i_queue_name IS NULL THEN
        RAISE EXCEPTION 'Invalid NULL value';
    END IF;
    -- pgqgo refuses what PgQ 3.5 accepts but nothing can use: an empty name
    -- (no command line can name it) and one too long for NOTIFY's 8000-byte
    -- payload (every tick announces the queue by name)
    IF i_queue_name = '' THEN
        RAISE EXCEPTION 'queue name must not be empty';
    END IF;
    IF octet_length(i_queue_name) >= 8000 THEN
        RAISE EXCEPTION 'queue name too long: % bytes (at most 7999)', octet_length(i_queue_name);
    END IF;
    PERFORM 1 FROM pgq.queue WHERE queue_name = i_queue_name;
    IF FOUND THEN
        RETURN 0;
    END IF;

    v_id := nextval('pgq.queue_queue_id_seq');
    v_parent := 'event_' || v_id;
    v_pfx := 'pgq.' || v_parent;
    INSERT INTO pgq.queue (queue_id, queue_name, queue_data_pfx, queue_event_seq, queue_tick_seq)
    VALUES (v_id, i_queue_name, v_pfx, v_pfx || '_id_seq', v_pfx || '_tick_seq');

    EXECUTE format('CREATE SEQUENCE pgq.%I', v_parent || '_id_seq');
    EXECUTE format('CREATE SEQUENCE pgq.%I', v_parent || '_tick_seq');
    EXECUTE format('CREATE TABLE pgq.%I () INHERITS (pgq.event_template)', v_parent);
    FOR t IN 0 .. 2 LOOP
        v_child := v_parent || '_' || t;
        EXECUTE format('CREATE TABLE pgq.%I () INHERITS (pgq.%I)', v_child, v_parent);
        EXECUTE format('ALTER TABLE pgq.%I ALTER COLUMN ev_id SET DEFAULT nextval(%L::regclass)',
                       v_child, v_pfx || '_id_seq');
        EXECUTE format('CREATE INDEX %I ON pgq.%I (ev_txid)', v_child || '_txid_idx', v_child);
    END LOOP;

    PERFORM pgq.tune_storage(i_queue_name);
    PERFORM pgq.grant_perms(i_queue_name);
    PERFORM pgq._refresh_insert_dispatch();
    PERFORM pgq.ticker(i_queue_name);
    RETURN 1;
END
$$;
