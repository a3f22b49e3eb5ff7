-- pgq_node: the cascade's bookkeeping on each node, beside pgq (the tables of
-- Skytools' pgq_node 3.5, same names, columns, keys and checks).
--   node_location: every node of a queue's cascade this node knows, by name;
--   node_info: this node's own place in the cascade (one row per queue);
--   local_state: the cascaded consumers on this node (the worker and others)
--                and where they read from;
--   subscriber_info: the nodes that read this node's queue.
CREATE SCHEMA pgq_node;

CREATE TABLE pgq_node.node_location (
    queue_name    text    NOT NULL,
    node_name     text    NOT NULL,
    node_location text    NOT NULL,
    dead          boolean NOT NULL DEFAULT false,
    PRIMARY KEY (queue_name, node_name)
);

CREATE TABLE pgq_node.node_info (
    queue_name     text NOT NULL PRIMARY KEY,
    node_type      text NOT NULL CHECK (node_type IN ('root', 'branch', 'leaf')),
    node_name      text NOT NULL,
    worker_name    text,
    combined_queue text,
    node_attrs     text,
    FOREIGN KEY (queue_name, node_name) REFERENCES pgq_node.node_location,
    CHECK (CASE WHEN node_type = 'root' THEN worker_name IS NOT NULL AND combined_queue IS NULL
                WHEN node_type = 'branch' THEN worker_name IS NOT NULL AND combined_queue IS NULL
                WHEN node_type = 'leaf' THEN worker_name IS NOT NULL
                ELSE false END)
);

CREATE TABLE pgq_node.local_state (
    queue_name    text    NOT NULL,
    consumer_name text    NOT NULL,
    provider_node text    NOT NULL,
    last_tick_id  bigint  NOT NULL,
    cur_error     text,
    paused        boolean NOT NULL DEFAULT false,
    uptodate      boolean NOT NULL DEFAULT false,
    PRIMARY KEY (queue_name, consumer_name),
    FOREIGN KEY (queue_name) REFERENCES pgq_node.node_info,
    FOREIGN KEY (queue_name, provider_node) REFERENCES pgq_node.node_location
);

CREATE TABLE pgq_node.subscriber_info (
    queue_name      text NOT NULL,
    subscriber_node text NOT NULL,
    worker_name     text NOT NULL,
    watermark_name  text NOT NULL,
    PRIMARY KEY (queue_name, subscriber_node),
    FOREIGN KEY (queue_name) REFERENCES pgq_node.node_info,
    FOREIGN KEY (queue_name, subscriber_node) REFERENCES pgq_node.node_location,
    FOREIGN KEY (worker_name) REFERENCES pgq.consumer (co_name),
    FOREIGN KEY (watermark_name) REFERENCES pgq.consumer (co_name)
);
