"""The RFC 7208 SPF test suite (openspf.org, 2014.04, shipped by Debian's
python3-spf) as real DNS: each scenario's zone data served by a dnslib
server on loopback, with the suite's conventions as pyspf's own driver
(testspf.py) reads them:

- a name's entries are maps {TYPE: value} or the word TIMEOUT; a query is
  answered with the records of its type listed before a TIMEOUT entry, or
  never answered (a timeout) when there are none; ``TYPE: TIMEOUT`` makes
  that one type time out;
- ``SPF`` records are also served as ``TXT`` when the name has no TXT
  entry at all (``TXT: NONE`` says "no TXT, and do not copy");
- names not in the zone are NXDOMAIN, but ``error.*`` names time out;
- CNAMEs are followed like a recursive resolver would.
"""

import gzip

import yaml
from dnslib import (AAAA, CNAME, MX, PTR, QTYPE, RCODE, RR, TXT, A,
                    DNSError, DNSLabel)
from dnslib.server import BaseResolver, DNSLogger, DNSServer

from wardentest import free_port

SUITE = "/usr/share/doc/python3-spf/rfc7208-tests.yml.gz"


def load_suite(path=SUITE):
    """[(description, zonedata, {case: data})] in file order."""
    with gzip.open(path, "rb") as f:
        return [(d.get("description", "?"), d.get("zonedata") or {},
                 d.get("tests") or {}) for d in yaml.safe_load_all(f)]


def _records(entries):
    """A name's entries as [(type, value)] with TIMEOUT markers kept,
    SPF copied to TXT when there is no TXT entry."""
    out, spf, has_txt = [], [], False
    for e in entries:
        if not isinstance(e, dict):
            out.append(("TIMEOUT", None))
            continue
        for t, v in e.items():
            if t in ("TXT", "SPF") and isinstance(v, str) and v != "TIMEOUT":
                v = [v]
            if t == "TXT":
                has_txt = True
            elif t == "SPF":
                spf.append(("TXT", v))
            if v != ["NONE"]:
                out.append((t, v))
    return out if has_txt else out + spf


def _txt_strings(values):
    chunks = []
    for s in values:
        b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
        chunks += [b[i:i + 255] for i in range(0, len(b), 255)] or [b""]
    return chunks


def _rdata(t, v):
    if t == "A":
        return A(v)
    if t == "AAAA":
        return AAAA(v)
    if t == "MX":
        return MX(v[1], v[0])
    if t == "PTR":
        return PTR(v)
    if t == "CNAME":
        return CNAME(v)
    return TXT(_txt_strings(v))


class _Timeout(Exception):
    pass


class SuiteZone(BaseResolver):
    def __init__(self, zonedata):
        self.zone = {n.lower().rstrip("."): _records(e or [])
                     for n, e in zonedata.items()}
        self.queries = []

    def _answers(self, name, qtype, depth=0):
        """[(owner, type, value)] for name/qtype; raises _Timeout."""
        if name not in self.zone:
            if name.startswith("error."):
                raise _Timeout()
            return None
        out, found = [], False
        for t, v in self.zone[name]:
            if t == "TIMEOUT":
                if not found:
                    raise _Timeout()
                break
            if v == "TIMEOUT":
                if t == qtype:
                    raise _Timeout()
                continue
            if t == qtype:
                found = True
                out.append((name, t, v))
            elif t == "CNAME" and depth < 8:
                out.append((name, t, v))
                target = v.lower().rstrip(".")
                more = self._answers(target, qtype, depth + 1)
                out += more or []
        return out

    def resolve(self, request, handler):
        q = request.q
        # from the raw labels: str() would escape a space as "\\032"
        name = ".".join(l.decode("latin-1") for l in q.qname.label).lower()
        qtype = QTYPE.get(q.qtype, str(q.qtype))
        self.queries.append((name, qtype))
        reply = request.reply()
        try:
            answers = self._answers(name, qtype)
        except _Timeout:
            # dnslib sends nothing for a DNSError: the client times out
            raise DNSError("timeout for %s/%s" % (name, qtype))
        if answers is None:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        for owner, t, v in answers:
            reply.add_answer(RR(DNSLabel(owner.encode("latin-1")),
                                getattr(QTYPE, t),
                                rdata=_rdata(t, v), ttl=0))
        return reply


class SuiteServer:
    """One scenario's zone on 127.0.0.1 (UDP and TCP)."""

    def __init__(self, zonedata):
        self.port = free_port()
        self.zone = SuiteZone(zonedata)
        quiet = DNSLogger("-request,-reply,-truncated,-error,-recv,-send,"
                          "-data")
        self.udp = DNSServer(self.zone, port=self.port, address="127.0.0.1",
                             logger=quiet)
        self.tcp = DNSServer(self.zone, port=self.port, address="127.0.0.1",
                             tcp=True, logger=quiet)
        self.udp.start_thread()
        self.tcp.start_thread()

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def stop(self):
        self.udp.stop()
        self.tcp.stop()
