-- Function and table grants, as PgQ 3.5 makes them. Re-run after every
-- install or upgrade. Grants to a PgQ role are skipped when the role is
-- missing (see roles.sql).
DO $grants$
BEGIN
    REVOKE ALL ON ALL FUNCTIONS IN SCHEMA pgq FROM PUBLIC;
    GRANT USAGE ON SCHEMA pgq TO PUBLIC;
    GRANT EXECUTE ON FUNCTION
        pgq.version(), pgq.pgqgo_version(), pgq.quote_fqname(text), pgq.seq_getval(text),
        pgq.get_queue_info(), pgq.get_queue_info(text),
        pgq.get_consumer_info(), pgq.get_consumer_info(text), pgq.get_consumer_info(text, text)
        TO PUBLIC;
    GRANT SELECT ON pgq.queue, pgq.consumer, pgq.subscription, pgq.tick, pgq.pgqgo_schema TO PUBLIC;

    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'pgq_reader') THEN
        GRANT EXECUTE ON FUNCTION
            pgq.batch_event_sql(bigint), pgq.batch_event_tables(bigint),
            pgq.batch_retry(bigint, integer),
            pgq.event_retry(bigint, bigint, integer), pgq.event_retry(bigint, bigint, timestamptz),
            pgq.find_tick_helper(integer, bigint, timestamptz, bigint, bigint, interval),
            pgq.finish_batch(bigint), pgq.force_tick(text),
            pgq.get_batch_cursor(bigint, text, integer), pgq.get_batch_cursor(bigint, text, integer, text),
            pgq.get_batch_events(bigint), pgq.get_batch_info(bigint),
            pgq.next_batch(text, text), pgq.next_batch_custom(text, text, interval, integer, interval),
            pgq.next_batch_info(text, text),
            pgq.register_consumer(text, text), pgq.register_consumer_at(text, text, bigint),
            pgq.unregister_consumer(text, text),
            pgq._batch_sql(bigint, text),
            pgq.dead_letter_event(bigint, bigint, timestamptz, bigint, integer, text, text, text, text, text, text, text)
            TO pgq_reader;
        GRANT SELECT ON pgq.consumer, pgq.queue, pgq.subscription, pgq.tick, pgq.event_template TO pgq_reader;
    END IF;

    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'pgq_writer') THEN
        GRANT EXECUTE ON FUNCTION
            pgq.current_event_table(text),
            pgq.insert_event(text, text, text), pgq.insert_event(text, text, text, text, text, text, text),
            pgq.insert_event_bulk(text, text[], text[], text[], text[], text[], text[]),
            pgq.logutriga(), pgq.sqltriga(), pgq.jsontriga(),
            -- the triggers run as the writing role: their helpers go with them
            pgq._urlencode(text), pgq._trigger_args(text[], text, text, text),
            pgq._trigger_columns(oid, text[]), pgq._record_fields(text), pgq._trigger_pkey(oid),
            pgq._record_urlencoded(text), pgq._urlencode_format(text[], text[], integer), pgq._trigger_layout_text(oid, text), pgq._trigger_row_urlencoded(text), pgq._trigger_row_values(text),
            pgq._trigger_fast_event(text, oid, text, text, text, json, text, text),
            pgq._trigger_layout(oid, text[], json), pgq._trigger_changes(text[], boolean[], text[], text[], text[]), pgq._trigger_eval(text, anyelement), pgq._trigger_when(text, anyelement),
            pgq._trigger_emit(text, text[], text[], anyelement), pgq._trigger_special(text[], text[]),
            pgq._trigger_json_sql(text[], oid[]), pgq._urlencode_row(text[], text[], text[]), pgq._json_row(text[], text[], text[])
            TO pgq_writer;
    END IF;

    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'pgq_admin') THEN
        GRANT EXECUTE ON FUNCTION
            pgq._grant_perms_from(text, text, text, text), pgq.create_queue(text),
            pgq.drop_queue(text), pgq.drop_queue(text, boolean),
            pgq.event_retry_raw(text, text, timestamptz, bigint, timestamptz, integer, text, text, text, text, text, text),
            pgq.grant_perms(text),
            pgq.insert_event_raw(text, bigint, timestamptz, integer, integer, text, text, text, text, text, text),
            pgq.maint_operations(), pgq.maint_retry_events(),
            pgq.maint_rotate_tables_step1(text), pgq.maint_rotate_tables_step2(),
            pgq.maint_tables_to_vacuum(), pgq.seq_setval(text, bigint),
            pgq.set_queue_config(text, text, text),
            pgq.ticker(), pgq.ticker(text), pgq.ticker(text, bigint, timestamptz, bigint),
            pgq.tune_storage(text), pgq.upgrade_schema(), pgq.pgqgo_ticker(interval), pgq.pgqgo_ticker(interval, interval), pgq.pgqgo_thin_ticks(),
            pgq._count_tx_event(integer, text, integer, bigint),
            pgq._insert_dispatch(integer, integer, bigint, timestamptz, bigint, integer, integer, text, text, text, text, text, text),
            pgq._insert_bulk_dispatch(integer, integer, bigint, text[], text[], text[], text[], text[], text[]),
            pgq.dead_letter_replay(bigint)
            TO pgq_admin;
        IF to_regclass('pgq.dead_letter') IS NOT NULL THEN -- absent below migration 2
            GRANT SELECT, DELETE ON pgq.dead_letter TO pgq_admin;
        END IF;
        GRANT SELECT, INSERT, UPDATE, DELETE ON pgq.consumer, pgq.queue, pgq.subscription, pgq.tick, pgq.retry_queue TO pgq_admin;
        GRANT SELECT, INSERT, TRUNCATE ON pgq.event_template TO pgq_admin;
        IF to_regclass('pgq.pgqgo_queue_version') IS NOT NULL THEN -- absent below migration 3
            GRANT SELECT, UPDATE ON pgq.pgqgo_queue_version TO pgq_admin;
            GRANT SELECT, USAGE ON SEQUENCE pgq.pgqgo_queue_gen TO pgq_admin;
        END IF;
    END IF;
END
$grants$;
