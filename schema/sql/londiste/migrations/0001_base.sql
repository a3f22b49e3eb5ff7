-- londiste: the replication bookkeeping on each node, beside pgq and
-- pgq_node (the tables of Skytools' londiste 3.8, same names, columns, keys
-- and checks).
--   table_info: the tables replicated through a queue, their copy state;
--   seq_info: the sequences replicated, their last value;
--   applied_execute: the EXECUTE scripts applied on this node;
--   pending_fkeys: foreign keys dropped for a copy, to restore after it.
CREATE SCHEMA londiste;

CREATE TABLE londiste.table_info (
    nr              serial  NOT NULL,
    queue_name      text    NOT NULL,
    table_name      text    NOT NULL,
    local           boolean NOT NULL DEFAULT false,
    merge_state     text,
    custom_snapshot text,
    dropped_ddl     text,
    table_attrs     text,
    dest_table      text,
    PRIMARY KEY (queue_name, table_name),
    FOREIGN KEY (queue_name) REFERENCES pgq_node.node_info (queue_name) ON DELETE CASCADE,
    CHECK (dropped_ddl IS NULL OR merge_state IN ('in-copy', 'catching-up'))
);

CREATE TABLE londiste.seq_info (
    nr         serial  NOT NULL,
    queue_name text    NOT NULL,
    seq_name   text    NOT NULL,
    local      boolean NOT NULL DEFAULT false,
    last_value bigint  NOT NULL,
    PRIMARY KEY (queue_name, seq_name),
    FOREIGN KEY (queue_name) REFERENCES pgq_node.node_info (queue_name) ON DELETE CASCADE
);

CREATE TABLE londiste.applied_execute (
    queue_name    text        NOT NULL,
    execute_file  text        NOT NULL PRIMARY KEY,
    execute_time  timestamptz NOT NULL DEFAULT now(),
    execute_sql   text        NOT NULL,
    execute_attrs text
);

CREATE TABLE londiste.pending_fkeys (
    from_table text NOT NULL,
    to_table   text NOT NULL,
    fkey_name  text NOT NULL,
    fkey_def   text NOT NULL,
    PRIMARY KEY (from_table, fkey_name)
);
