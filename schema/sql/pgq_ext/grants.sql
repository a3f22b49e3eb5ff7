-- pgq_ext grants: the bookkeeping is used by whatever role the consumer
-- writes with, so the schema and its functions are open to PUBLIC.
GRANT USAGE ON SCHEMA pgq_ext TO PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON pgq_ext.completed_batch, pgq_ext.completed_tick,
    pgq_ext.completed_event, pgq_ext.partial_batch TO PUBLIC;
