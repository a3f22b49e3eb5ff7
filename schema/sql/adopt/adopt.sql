-- Adoption of an existing Skytools PgQ 3.5 (C extension or plain SQL): its
-- tables, sequences, queues, consumers, ticks, event tables and retry
-- entries stay exactly as they are. This file only adds pgqgo's bookkeeping
-- table (as migration 0001 creates it); the installer then applies the
-- later migrations and replaces every function with pgqgo's.
CREATE TABLE pgq.pgqgo_schema (
    singleton    boolean     NOT NULL DEFAULT true PRIMARY KEY CHECK (singleton),
    release      text        NOT NULL,
    migration    integer     NOT NULL,
    checksum     text        NOT NULL,
    installed_at timestamptz NOT NULL DEFAULT now(),
    upgraded_at  timestamptz NOT NULL DEFAULT now()
);
