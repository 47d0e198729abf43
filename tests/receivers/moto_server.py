"""moto's server with each SQS queue operation made atomic, as SQS's are.

moto serves requests on several threads and keeps a queue's messages in a plain list with no
lock around it. Under concurrent requests it then does what SQS never does: two receives
racing between "is it visible" and "mark it received" both get one message, and two deletes
racing over the rebuilt message list undo one another, so a deleted message comes back. The
tests check trailwatch's own repeats against a queue, so they need a queue that is not wrong in
these ways. Every queue operation here runs under one lock; a receive that long-polls waits
between tries outside it, so that deletes and extensions from other clients are not held up.
Everything else is moto's own server (`python -m moto.server` with the same arguments).
"""

import functools
import sys
import threading
import time

from moto import server
from moto.sqs.models import SQSBackend

LOCK = threading.RLock()

for name in [
    "send_message",
    "send_message_batch",
    "delete_message",
    "delete_message_batch",
    "change_message_visibility",
    "change_message_visibility_batch",
    "purge_queue",
]:
    original = getattr(SQSBackend, name)

    def atomic(*args, __original=original, **kwargs):
        with LOCK:
            return __original(*args, **kwargs)

    setattr(SQSBackend, name, functools.wraps(original)(atomic))

_receive = SQSBackend.receive_message


@functools.wraps(_receive)
def receive_message(self, queue_name, count, wait_seconds_timeout, *args, **kwargs):
    deadline = time.monotonic() + int(wait_seconds_timeout or 0)
    while True:
        with LOCK:
            result = _receive(self, queue_name, count, 0, *args, **kwargs)
        if result or time.monotonic() >= deadline:
            return result
        time.sleep(0.05)


SQSBackend.receive_message = receive_message

if __name__ == "__main__":
    server.main(sys.argv[1:])
