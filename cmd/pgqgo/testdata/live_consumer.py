#!/usr/bin/python3
"""Skytools' Python consumer (Debian python3-pgq) kept running across a live
upgrade: records every event in table seen_py, in the batch's transaction,
until the file named by stop_file exists and the queue has nothing left.

usage: live_consumer.py CONFIG.ini
"""
import os
import sys

import pgq


class Live(pgq.Consumer):
    def process_event(self, db, ev):
        db.cursor().execute("insert into seen_py (ev_id, ev_type, ev_data) values (%s, %s, %s)",
                            [ev.id, ev.type, ev.data])

    def work(self):
        got = super().work()
        if not got and os.path.exists(self.cf.get("stop_file")):
            self.looping = 0
        return got


if __name__ == "__main__":
    Live("live_consumer", "db", sys.argv[1:]).start()
