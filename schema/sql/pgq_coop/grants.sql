-- pgq_coop grants: callable by whoever may read queues (pgq_reader), like
-- pgq's consumer functions; nothing for PUBLIC except version().
DO $grants$
BEGIN
    REVOKE ALL ON ALL FUNCTIONS IN SCHEMA pgq_coop FROM PUBLIC;
    GRANT USAGE ON SCHEMA pgq_coop TO PUBLIC;
    GRANT EXECUTE ON FUNCTION pgq_coop.version() TO PUBLIC;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'pgq_reader') THEN
        GRANT EXECUTE ON FUNCTION
            pgq_coop.register_subconsumer(text, text, text),
            pgq_coop.unregister_subconsumer(text, text, text, integer),
            pgq_coop.next_batch(text, text, text),
            pgq_coop.next_batch(text, text, text, interval),
            pgq_coop.next_batch_custom(text, text, text, interval, integer, interval),
            pgq_coop.next_batch_custom(text, text, text, interval, integer, interval, interval),
            pgq_coop.finish_batch(bigint),
            pgq_coop.finish_batch(bigint, text, text, text)
            TO pgq_reader;
    END IF;
END
$grants$;
