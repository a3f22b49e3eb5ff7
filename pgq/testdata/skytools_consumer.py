#!/usr/bin/python3
"""Skytools' Python consumer (Debian python3-pgq), as the consumer benchmark's
baseline. A pgq.Consumer with a no-op process_event, run until the queue has
nothing left for it, then it prints how many events it saw and how long that
took (from its first batch to the end).

usage: skytools_consumer.py CONFIG.ini
"""
import sys
import time

import pgq


class DrainConsumer(pgq.Consumer):
    events = 0
    first = None

    def process_event(self, db, ev):
        # a no-op handler: the default tags the event done
        self.events += 1

    def work(self):
        if self.first is None:
            self.first = time.monotonic()
        got = super().work()
        if not got:
            self.looping = 0  # caught up: stop
        return got


if __name__ == "__main__":
    c = DrainConsumer("skytools_consumer", "db", sys.argv[1:])
    c.start()
    print("events %d seconds %.6f" % (c.events, time.monotonic() - c.first))
