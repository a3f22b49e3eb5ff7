-- pgq_coop: cooperative consumers. The schema holds only functions; the
-- sub-consumers live in pgq.consumer / pgq.subscription as
-- '<consumer>.<subconsumer>' rows sharing the main consumer's sub_id.
CREATE SCHEMA IF NOT EXISTS pgq_coop;
