"""The client's verified host name (forward-confirmed reverse DNS, from a
real DNS server on loopback) reaches the backend as XCLIENT NAME; a
failed lookup is [UNAVAILABLE], a timeout [TEMPUNAVAIL], never a name."""

import pytest

from dnstest import DNSTestServer
from wardentest import SMTPClient

RECORDS = [
    ("9.0.0.127.in-addr.arpa", "PTR", "client9.test."),
    ("client9.test", "A", "127.0.0.9"),
    ("10.0.0.127.in-addr.arpa", "PTR", "liar.test."),
    ("liar.test", "A", "192.0.2.1"),
]


@pytest.fixture
def dns():
    d = DNSTestServer(RECORDS)
    yield d
    d.stop()


def name_seen(warden_factory, capture, dns_address, source, timeout="2s"):
    w = warden_factory({"backend": {"client_identity": "xclient"},
                        "dns": {"resolve_client": True,
                                "servers": [dns_address],
                                "timeout": timeout}}, capture)
    c = SMTPClient()
    c.connect(w.port, source=(source, 0))
    c.expect(220, timeout=10)
    c.ehlo()
    return capture.connections[-1].xclient_attrs["NAME"]


def test_verified_name(warden_factory, capture, dns):
    assert name_seen(warden_factory, capture, dns.address,
                     "127.0.0.9") == "client9.test"
    assert ("9.0.0.127.in-addr.arpa.", "PTR") in dns.zone.queries


def test_name_that_does_not_verify(warden_factory, capture, dns):
    assert name_seen(warden_factory, capture, dns.address,
                     "127.0.0.10") == "[UNAVAILABLE]"


def test_no_ptr(warden_factory, capture, dns):
    assert name_seen(warden_factory, capture, dns.address,
                     "127.0.0.11") == "[UNAVAILABLE]"


def test_dns_timeout_is_temporary(warden_factory, capture):
    silent = DNSTestServer(RECORDS, silent=True)
    try:
        assert name_seen(warden_factory, capture, silent.address,
                         "127.0.0.9", timeout="1s") == "[TEMPUNAVAIL]"
    finally:
        silent.stop()
