"""Peers for the queue and delivery tests: a downstream SMTP server and a DNS server.

Downstream(host) is an aiosmtpd server on a fixed free port (so it can be stopped and
started again on the same port) that records every message it accepts and answers per
recipient from `replies`:

    ds = Downstream().start()
    ds.replies["bad@example.org"] = "550 5.1.1 no such user"      # every time
    ds.replies["slow@example.org"] = ["451 4.3.0 try later", None]  # first 451, then 250
    ds.wait_for(3)                       # until 3 (message, rcpt) deliveries arrived
    ds.stop()

The DNS server for MX routing is peers_dns.Dnsmasq.

Everything is bounded: every wait has a time-out and teardown stops the process/thread.
"""

import asyncio
import os
import socket
import subprocess
import threading
import time

from aiosmtpd.controller import Controller


def refusing_port(host="127.0.0.1"):
    """(socket, port): bound but not listening, so connections are refused, and held, so
    that no other process can start listening there while the test runs."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((host, 0))
    return s, s.getsockname()[1]


def free_port(host="127.0.0.1", kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


class _Handler:
    def __init__(self, owner):
        self.owner = owner

    def _reply(self, rcpt):
        r = self.owner.replies.get(rcpt.lower())
        if isinstance(r, list):
            with self.owner.lock:
                v = r.pop(0) if len(r) > 1 else r[0]
            return v
        return r

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        r = self._reply(address)
        if r:
            return r
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.owner.data_delay:
            await asyncio.sleep(self.owner.data_delay)
        if self.owner.data_reply:
            return self.owner.data_reply
        with self.owner.lock:
            self.owner.messages.append({
                "mail_from": envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos),
                "content": envelope.original_content or envelope.content,
                "peer": session.peer,
                "tls": session.ssl is not None,
            })
        return "250 2.0.0 OK delivered"


class Downstream:
    def __init__(self, host="127.0.0.1", port=None, tls_context=None):
        self.host = host
        self.port = port or free_port(host)
        self.replies = {}
        self.data_reply = None
        self.data_delay = 0
        self.messages = []
        self.lock = threading.Lock()
        self.controller = None
        self.tls_context = tls_context

    @property
    def addr(self):
        return f"{self.host}:{self.port}"

    def start(self):
        kwargs = {}
        if self.tls_context is not None:
            kwargs["tls_context"] = self.tls_context
        self.controller = Controller(_Handler(self), hostname=self.host, port=self.port,
                                     ready_timeout=5, **kwargs)
        self.controller.start()
        return self

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def deliveries(self):
        """[(message index, rcpt)] of everything accepted so far."""
        with self.lock:
            return [(i, r) for i, m in enumerate(self.messages) for r in m["rcpt_tos"]]

    def rcpts(self):
        return sorted(r for _, r in self.deliveries())

    def message_ids(self):
        """{Message-ID: times accepted} of everything accepted so far."""
        counts = {}
        with self.lock:
            contents = [m["content"] for m in self.messages]
        for content in contents:
            mid = header_value(content, b"Message-ID")
            counts[mid] = counts.get(mid, 0) + 1
        return counts

    def wait_for(self, n, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.deliveries()) >= n:
                return self.deliveries()
            time.sleep(0.05)
        raise AssertionError(f"downstream got {len(self.deliveries())} deliveries, want {n}: "
                             f"{self.rcpts()}")


def header_value(content, name):
    """The first header `name` of a raw message (bytes), stripped, or None."""
    head = content.split(b"\r\n\r\n", 1)[0]
    want = name.lower() + b":"
    for line in head.split(b"\r\n"):
        if line.lower().startswith(want):
            return line[len(want):].strip().decode("ascii", "replace")
    return None


def delivery_conf(downstream=None, local_domains=("example.org", "example.net"), **extra):
    """Config overrides for a moatd that delivers: local domains to the downstream."""
    from conftest import local_domains_seed
    conf = {
        "delivery": "yes",
        "seed_policy": local_domains_seed(*local_domains),
        "downstream": downstream or "",
        "retry_min": "1s",
        "retry_max": "2s",
        "queue_poll": "200ms",
        "downstream_tls": "off",
        "delivery_tls": "off",
        "dns_servers": "127.0.0.1:9",
        "dns_timeout": "500ms",
        "dns_tries": "1",
    }
    conf.update(extra)
    return conf


def send(d, sender, rcpts, body=None, subject="t"):
    """One message through moatd's SMTP listener; returns its queue id."""
    from conftest import message, qid_of
    c = d.raw()
    try:
        c.ehlo()
        reply = c.transaction(sender, rcpts, body or message(subject=subject))
        return qid_of(reply)
    finally:
        c.close()


def rcpt_states(d, qid):
    return dict(d.query("SELECT rcpt, state FROM queue_rcpt WHERE qid = ?", (qid,)))


def wait_for(pred, timeout=15.0, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)
