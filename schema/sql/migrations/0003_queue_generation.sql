-- 0003: a generation number for the queue rows (release 0.3.0). Every change
-- of a queue's id, name, current table, disable_insert or per_tx_limit (and
-- every queue created or dropped) takes a new value from pgq.pgqgo_queue_gen
-- and records it in pgq.pgqgo_queue_version, committed with the change (the
-- trigger pgqgo_queue_gen on pgq.queue, see functions/pgqgo_queue_gen.sql).
-- logutriga's fast path keeps the queue row it read per session and uses it
-- while the sequence has not moved: one sequence read instead of a query per
-- event (see pgq._trigger_fast_event).
CREATE SEQUENCE pgq.pgqgo_queue_gen;
CREATE TABLE pgq.pgqgo_queue_version (gen bigint NOT NULL);
INSERT INTO pgq.pgqgo_queue_version VALUES (nextval('pgq.pgqgo_queue_gen'));
