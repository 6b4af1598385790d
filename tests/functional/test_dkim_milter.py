"""DKIM and DMARC through the milter front end: Postfix hands the message
to Warden (smtpd_milters), which verifies the dkimpy signature with keys
from the loopback DNS server and has Postfix insert the one
Authentication-Results field, and delete a forged one, in the message that
reaches the sink; a DMARC p=reject fail is refused with Warden's reply."""

import pytest

from dkimtest import Key, authres, header_fields
from dnstest import DNSTestServer
from test_milter import milter_warden, postfix_with_milter, send

KEY = Key.dkimpy_rsa("sel")
RECORDS = KEY.records("example.com") + [
    ("_dmarc.example.com", "TXT", "v=DMARC1; p=reject"),
]
POLICY = """\
spf: {}
dkim: {}
dmarc:
  honor_policy: true
  exempt:
    authenticated: true
"""

MSG = (b"From: Alice <alice@example.com>\r\nTo: b@example.com\r\n"
       b"Subject: milter dkim\r\nDate: Mon, 01 Jan 2024 00:00:00 +0000\r\n"
       b"Message-ID: <m1@example.com>\r\n\r\nHello through Postfix.\r\n")


@pytest.fixture
def dns():
    d = DNSTestServer(RECORDS)
    yield d
    d.stop()


def test_milter_verifies_and_tags(warden_factory, postfix_factory, tmp_path,
                                  dns):
    pol = tmp_path / "auth.yaml"
    pol.write_text(POLICY)
    w, port = milter_warden(warden_factory, tmp_path, [pol],
                            extra={"dns": {"servers": [dns.address],
                                           "timeout": "1s"}})
    pf = postfix_with_milter(postfix_factory, port)
    forged = b"Authentication-Results: warden.test; dkim=pass\r\n"
    codes, last = send(pf.port, "a@example.org", ["b@example.com"],
                       body=forged + KEY.sign(MSG, "example.com") + MSG)
    assert codes == [220, 250, 250, 250], (codes, last)
    got = pf.sink.wait_messages(1, timeout=30)[0]
    fields = header_fields(got, "Authentication-Results")
    assert len(fields) == 1, fields
    ar = authres(got)
    assert "dkim=pass header.d=example.com header.s=sel" in ar
    assert "dmarc=pass (p=reject dis=none) header.from=example.com" in ar

    # unsigned, From: example.com, MAIL FROM elsewhere: DMARC fail, refused
    codes, last = send(pf.port, "a@example.org", ["b@example.com"],
                       body=MSG.replace(b"m1@", b"m2@"))
    assert codes[-1] == 550, (codes, last)
    assert b"5.7.1 Email rejected per DMARC policy" in last.raw
