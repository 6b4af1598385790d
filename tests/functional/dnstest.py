"""A real DNS server on loopback for tests, serving fixed records with
dnslib (Debian's python3-dnslib): PTR, A, AAAA, TXT. Unknown names get
NXDOMAIN; ``silent=True`` drops every query (to test timeouts)."""

import threading

from dnslib import QTYPE, RCODE, RR, A, AAAA, PTR, TXT, DNSRecord
from dnslib.server import BaseResolver, DNSServer

from wardentest import free_port


class _Zone(BaseResolver):
    def __init__(self, records, silent):
        self.records = {}
        for name, rtype, value in records:
            self.records.setdefault((name.rstrip(".").lower() + ".",
                                     rtype), []).append(value)
        self.silent = silent
        self.queries = []

    def resolve(self, request, handler):
        q = request.q
        name, rtype = str(q.qname).lower(), QTYPE[q.qtype]
        self.queries.append((name, rtype))
        reply = request.reply()
        if self.silent:
            return None
        values = self.records.get((name, rtype))
        if not values:
            if not any(k[0] == name for k in self.records):
                reply.header.rcode = RCODE.NXDOMAIN
            return reply
        make = {"A": A, "AAAA": AAAA, "PTR": PTR, "TXT": TXT}[rtype]
        for v in values:
            reply.add_answer(RR(q.qname, q.qtype, rdata=make(v), ttl=60))
        return reply


class DNSTestServer:
    """UDP DNS server on 127.0.0.1:<free port>; ``.address``."""

    def __init__(self, records, silent=False):
        self.port = free_port()
        self.zone = _Zone(records, silent)
        self.server = DNSServer(self.zone, port=self.port,
                                address="127.0.0.1")
        self.server.start_thread()

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def stop(self):
        self.server.stop()
