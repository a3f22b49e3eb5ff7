-- 0002: the dead-letter table (release 0.2.0). Events a consumer gave up on
-- after too many retries are kept here, with the reason, for an operator to
-- inspect and replay (pgq.dead_letter_replay). PgQ 3.5 has no equivalent.
CREATE TABLE pgq.dead_letter (
    dl_id       bigserial   PRIMARY KEY,
    dl_time     timestamptz NOT NULL DEFAULT now(),
    dl_queue    text        NOT NULL,
    dl_consumer text        NOT NULL,
    dl_reason   text,
    ev_id       bigint      NOT NULL,
    ev_time     timestamptz NOT NULL,
    ev_txid     bigint,
    ev_retry    integer,
    ev_type     text,
    ev_data     text,
    ev_extra1   text,
    ev_extra2   text,
    ev_extra3   text,
    ev_extra4   text
);
CREATE INDEX dead_letter_consumer_idx ON pgq.dead_letter (dl_queue, dl_consumer, dl_id);
