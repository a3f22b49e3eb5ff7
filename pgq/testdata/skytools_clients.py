#!/usr/bin/python3
"""Skytools' own consumer classes (Debian python3-pgq), run against pgqgo's
pgq_coop and pgq_ext to show that they are compatible. Each drains its queue
and exits.

usage: skytools_clients.py coop|remote CONFIG.ini
  coop    pgq.CoopConsumer: records (subconsumer, ev_id) in table seen of the
          queue's database, in the batch's transaction
  remote  pgq.RemoteConsumer: records (ev_id, ev_data) in table applied of the
          database named by the dst_db key, tracked with pgq_ext
"""
import sys

import pgq


class Drain:
    """Stop once the queue has nothing left for this consumer."""

    def work(self):
        got = super().work()
        if not got:
            self.looping = 0
        return got


class Coop(Drain, pgq.CoopConsumer):
    def process_event(self, db, ev):
        db.cursor().execute("insert into seen (member, ev_id) values (%s, %s)",
                            [self.subconsumer_name, ev.id])


class Remote(Drain, pgq.RemoteConsumer):
    def __init__(self, args):
        super().__init__("skytools_clients", "db", "dst_db", args)

    def process_remote_batch(self, db, batch_id, ev_list, dst_db):
        curs = dst_db.cursor()
        for ev in ev_list:
            curs.execute("insert into applied (ev_id, data) values (%s, %s)", [ev.id, ev.data])


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "coop":
        Coop("skytools_clients", "db", args).start()
    elif mode == "remote":
        Remote(args).start()
    else:
        sys.exit("unknown mode " + mode)
