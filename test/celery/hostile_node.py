"""A pidbox node on kombu's own Mailbox that answers one command with a hostile reply.

Usage: hostile_node.py <hostname> <method>

It listens on the `celery.pidbox` broadcast exchange like a worker (kombu's
Node, so kombu decides which broadcasts are meant for it: named in the
destination, or no destination at all) and answers `<method>`, and nothing
else, with a reply whose keys include `__proto__`, `constructor` and
`prototype` besides its own hostname. Other commands are ignored, so test
files running at the same time on the shared broker never see it.
"""
import socket
import sys

from stalk_tasks import app

HOSTNAME, METHOD = sys.argv[1], sys.argv[2]
HOSTILE = {"polluted": "yes"}


def dispatch(method, arguments=None, reply_to=None, ticket=None, **kwargs):
    if method != METHOD or not reply_to:
        return None
    reply = {
        "__proto__": HOSTILE,
        "constructor": HOSTILE,
        "prototype": HOSTILE,
        HOSTNAME: {"ok": "hostile"},
    }
    node.reply(reply, exchange=reply_to["exchange"], routing_key=reply_to["routing_key"], ticket=ticket)
    return reply


with app.connection_for_write() as connection:
    mailbox = app.control.mailbox(connection)
    node = mailbox.Node(HOSTNAME, channel=connection.default_channel)
    node.dispatch = dispatch
    node.listen()
    print(f"{HOSTNAME} listening.", flush=True)
    while True:
        try:
            connection.drain_events(timeout=1)
        except socket.timeout:
            pass
