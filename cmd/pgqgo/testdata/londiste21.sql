-- Londiste 2.1's registry tables, written for pgqgo's tests from their
-- facts (table and column names, types, keys): what a 2.1 provider and
-- subscriber hold. Its functions are not needed: the tests play 2.1's
-- provider_add_table (a logtriga trigger named <queue>_logger with the
-- table's name as third argument) and its replay (SerialConsumer: a batch
-- applied and its tick recorded in completed in one transaction) by hand.
CREATE SCHEMA londiste;
CREATE TABLE londiste.provider_table (
    nr           serial NOT NULL,
    queue_name   text NOT NULL,
    table_name   text NOT NULL,
    trigger_name text,
    PRIMARY KEY (queue_name, table_name));
CREATE TABLE londiste.provider_seq (
    nr         serial NOT NULL,
    queue_name text NOT NULL,
    seq_name   text NOT NULL,
    PRIMARY KEY (queue_name, seq_name));
CREATE TABLE londiste.completed (
    consumer_id  text NOT NULL PRIMARY KEY,
    last_tick_id bigint NOT NULL);
CREATE TABLE londiste.link (
    source text NOT NULL PRIMARY KEY,
    dest   text NOT NULL UNIQUE);
CREATE TABLE londiste.subscriber_table (
    nr            serial NOT NULL,
    queue_name    text NOT NULL,
    table_name    text NOT NULL,
    snapshot      text,
    merge_state   text,
    trigger_name  text,
    skip_truncate bool,
    PRIMARY KEY (queue_name, table_name));
CREATE TABLE londiste.subscriber_seq (
    nr         serial NOT NULL,
    queue_name text NOT NULL,
    seq_name   text NOT NULL,
    PRIMARY KEY (queue_name, seq_name));
