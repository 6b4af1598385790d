"""DMARC at end of data, end to end, with SPF, DKIM (signed by dkimpy) and
DMARC records served by a real DNS server on loopback: the From: domain's
policy is found (at the domain, else its organizational domain from the
public suffix list), aligned with SPF and DKIM (relaxed and strict), and
the result goes in the one Authentication-Results field with spf= and
dkim=; a fail is rejected only when the policy file honors p=reject, pct
sampling softens it, a stopped DNS server is temperror, a message with
several From: fields is permerror."""

import re

import pytest

from dkimtest import Key, authres, header_fields
from dnstest import DNSTestServer
from wardentest import SMTPClient, check_config

KEY = Key.dkimpy_rsa("sel")

RECORDS = (
    KEY.records("example.com") + KEY.records("strict.example") +
    KEY.records("example.co.uk") + [
        ("example.com", "TXT", "v=spf1 -all"),
        ("bounce.example.com", "TXT", "v=spf1 ip4:127.0.0.0/8 -all"),
        ("sender.example.net", "TXT", "v=spf1 ip4:127.0.0.0/8 -all"),
        ("_dmarc.example.com", "TXT",
         "v=DMARC1; p=reject; sp=quarantine; rua=mailto:d@example.com"),
        ("_dmarc.example.com", "TXT", "some other TXT record"),
        ("_dmarc.strict.example", "TXT", "v=DMARC1; p=reject; adkim=s"),
        ("_dmarc.sampled.example", "TXT", "v=DMARC1; p=reject; pct=0"),
        ("_dmarc.watch.example", "TXT", "v=DMARC1; p=none"),
        ("_dmarc.example.co.uk", "TXT", "v=DMARC1; p=reject"),
        ("_dmarc.twice.example", "TXT", "v=DMARC1; p=none"),
        ("_dmarc.twice.example", "TXT", "v=DMARC1; p=reject"),
    ])

SECTIONS = "spf: {}\ndkim: {}\n"
HONOR = SECTIONS + """\
dmarc:
  honor_policy: true
  permerror: reject 550 5.7.1 "One author, please"
  temperror: tempfail 451 4.7.1 "DMARC lookup failed, try later"
"""


def body(from_addr, subject="DMARC test"):
    return (b"From: %s\r\nTo: bob@example.net\r\nSubject: %s\r\n"
            b"Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n"
            b"Message-ID: <dmarc@example.com>\r\n\r\nHello.\r\n" %
            (from_addr.encode(), subject.encode()))


@pytest.fixture(scope="module")
def dns():
    d = DNSTestServer(RECORDS)
    yield d
    d.stop()


def dmarc_warden(warden_factory, backend, tmp_path, dns_address,
                 policy=SECTIONS + "dmarc: {}\n"):
    pol = tmp_path / "auth.yaml"
    pol.write_text(policy)
    return warden_factory({"policies": [str(pol)],
                           "dns": {"servers": [dns_address],
                                   "timeout": "1s"}}, backend)


def send(w, mail_from, message):
    c = SMTPClient(w.port)
    c.expect(220)
    c.ehlo("client.test")
    r = c.sendmail(mail_from, ["bob@example.net"], message)
    c.cmd("QUIT")
    return r


def relayed(w, capture, mail_from, message):
    r = send(w, mail_from, message)
    assert r.code == 250, r
    return capture.wait_messages(1)[-1]


def dmarc_of(ar):
    m = re.search(r"dmarc=(\w+)(?: \(([^)]*)\))?(?: header\.from=(\S+))?",
                  ar)
    return m.groups() if m else None


def test_aligned_dkim_pass_one_field(warden_factory, capture, tmp_path, dns):
    w = dmarc_warden(warden_factory, capture, tmp_path, dns.address)
    m = body("Alice <alice@example.com>")
    msg = relayed(w, capture, "alice@other.example",
                  KEY.sign(m, "example.com") + m)
    fields = header_fields(msg, "Authentication-Results")
    assert len(fields) == 1
    ar = fields[0]
    assert ar.startswith("warden.test; spf=none "
                         "smtp.mailfrom=alice@other.example; dkim=pass ")
    assert ar.endswith("; dmarc=pass (p=reject dis=none) "
                       "header.from=example.com")
    w.wait_log(r"dmarc=pass header\.from=<example\.com> policy=reject "
               r"disposition=none aligned=dkim")
    # the transaction line carries every result
    w.wait_log(r"tx=1 .*from=<alice@other\.example> .*check=- spf=none "
               r"dkim=pass dmarc=pass result=sent")


def test_fail_is_tagged_by_default(warden_factory, capture, tmp_path, dns):
    w = dmarc_warden(warden_factory, capture, tmp_path, dns.address)
    msg = relayed(w, capture, "x@sender.example.net",
                  body("CEO <ceo@example.com>"))
    ar = authres(msg)
    assert "spf=pass smtp.mailfrom=x@sender.example.net" in ar
    assert "dkim=none" in ar
    assert dmarc_of(ar) == ("fail", "p=reject dis=reject", "example.com")


def test_fail_rejected_when_policy_honored(warden_factory, capture,
                                           tmp_path, dns):
    w = dmarc_warden(warden_factory, capture, tmp_path, dns.address, HONOR)
    r = send(w, "x@sender.example.net", body("CEO <ceo@example.com>"))
    assert r.raw == b"550 5.7.1 Email rejected per DMARC policy\r\n"
    assert capture.messages == []
    w.wait_log(r"reject: END-OF-MESSAGE from \[127\.0\.0\.1\]: 550 5\.7\.1 "
               r".*check=dmarc:fail")


def test_spf_alignment_relaxed(warden_factory, capture, tmp_path, dns):
    w = dmarc_warden(warden_factory, capture, tmp_path, dns.address, HONOR)
    msg = relayed(w, capture, "bounces@bounce.example.com",
                  body("news@example.com"))
    assert dmarc_of(authres(msg)) == ("pass", "p=reject dis=none",
                                      "example.com")
    w.wait_log(r"dmarc=pass .* aligned=spf")


def test_subdomain_uses_org_policy_and_sp(warden_factory, capture, tmp_path,
                                          dns):
    """news.example.com has no record: example.com's applies, with its sp=;
    d=example.com is aligned in relaxed mode."""
    w = dmarc_warden(warden_factory, capture, tmp_path, dns.address)
    m = body("news@news.example.com")
    msg = relayed(w, capture, "x@other.example", KEY.sign(m, "example.com") + m)
    assert dmarc_of(authres(msg)) == ("pass", "p=quarantine dis=none",
                                      "news.example.com")
    assert ("_dmarc.news.example.com.", "TXT") in dns.zone.queries
    assert ("_dmarc.example.com.", "TXT") in dns.zone.queries
    # unsigned: a fail, and the subdomain policy (quarantine) applies
    msg = relayed(w, capture, "x@other.example", body("n@news.example.com"))
    assert dmarc_of(authres(msg)) == ("fail", "p=quarantine dis=quarantine",
                                      "news.example.com")


def test_public_suffix_with_two_labels(warden_factory, capture, tmp_path,
                                       dns):
    """co.uk is a public suffix: mail.example.co.uk's organizational
    domain is example.co.uk."""
    w = dmarc_warden(warden_factory, capture, tmp_path, dns.address)
    m = body("a@mail.example.co.uk")
    msg = relayed(w, capture, "x@other.example",
                  KEY.sign(m, "example.co.uk") + m)
    assert dmarc_of(authres(msg)) == ("pass", "p=reject dis=none",
                                      "mail.example.co.uk")


def test_strict_alignment(warden_factory, capture, tmp_path, dns):
    w = dmarc_warden(warden_factory, capture, tmp_path, dns.address)
    m = body("a@mail.strict.example")
    msg = relayed(w, capture, "x@other.example",
                  KEY.sign(m, "strict.example") + m)
    ar = authres(msg)
    assert "dkim=pass" in ar                   # DKIM passes, not aligned
    assert dmarc_of(ar) == ("fail", "p=reject dis=reject",
                            "mail.strict.example")


def test_pct_zero_softens_reject(warden_factory, capture, tmp_path, dns):
    w = dmarc_warden(warden_factory, capture, tmp_path, dns.address, HONOR)
    msg = relayed(w, capture, "x@other.example", body("a@sampled.example"))
    assert dmarc_of(authres(msg)) == ("fail", "p=reject dis=quarantine",
                                      "sampled.example")


def test_no_policy_is_none(warden_factory, capture, tmp_path, dns):
    w = dmarc_warden(warden_factory, capture, tmp_path, dns.address, HONOR)
    msg = relayed(w, capture, "x@other.example", body("a@nodmarc.example"))
    assert dmarc_of(authres(msg)) == ("none", None, "nodmarc.example")


def test_two_records_is_permerror(warden_factory, capture, tmp_path, dns):
    w = dmarc_warden(warden_factory, capture, tmp_path, dns.address)
    msg = relayed(w, capture, "x@other.example", body("a@twice.example"))
    assert dmarc_of(authres(msg)) == ("permerror", "several DMARC records",
                                      "twice.example")


def test_several_from_fields_permerror(warden_factory, capture, tmp_path,
                                       dns):
    w = dmarc_warden(warden_factory, capture, tmp_path, dns.address, HONOR)
    m = b"From: a@example.com\r\n" + body("b@evil.example")
    r = send(w, "x@other.example", m)
    assert r.raw == b"550 5.7.1 One author, please\r\n"
    w.wait_log(r'dmarc=permerror header\.from=<> .*'
               r'reason="several From: fields"')
    m = body("a@example.com, b@example.org")
    r = send(w, "x@other.example", m)
    assert r.code == 550


def test_dns_stopped_is_temperror(warden_factory, capture, tmp_path):
    d = DNSTestServer(RECORDS)
    w = dmarc_warden(warden_factory, capture, tmp_path, d.address, HONOR)
    d.stop()
    r = send(w, "x@sender.example.net", body("ceo@example.com"))
    assert r.raw == b"451 4.7.1 DMARC lookup failed, try later\r\n"
    assert capture.messages == []
    w.wait_log(r'dmarc=temperror header\.from=<example\.com> .*'
               r'reason="DNS lookup failed"')


def test_authenticated_sessions_are_exempt(warden_factory, capture_factory,
                                           tmp_path, dns):
    cap = capture_factory(auth_success_user="alice", auth_password="pw")
    w = dmarc_warden(warden_factory, cap, tmp_path, dns.address, HONOR)
    c = SMTPClient(w.port)
    c.expect(220)
    c.ehlo("client.test")
    c.cmd("AUTH PLAIN AGFsaWNlAHB3", expect=235)
    r = c.sendmail("x@sender.example.net", ["bob@example.net"],
                   body("ceo@example.com"))
    assert r.code == 250
    msg = cap.wait_messages(1)[0]
    assert header_fields(msg, "Authentication-Results") == []


def test_config_check(tmp_path):
    pol = tmp_path / "dmarc.yaml"
    pol.write_text("dmarc:\n"
                   "  honor_policy: maybe\n"
                   "  policy_reject: reject 450 4.7.1 no\n"
                   "  public_suffix_list: /nonexistent/psl.dat\n")
    rc, out = check_config({"policies": [str(pol)]})
    assert rc != 0
    assert "%s:2: dmarc.honor_policy:" % pol in out
    assert "%s:3: dmarc.policy_reject:" % pol in out
    assert "%s:4: dmarc.public_suffix_list: cannot open " \
           "/nonexistent/psl.dat" % pol in out
    assert re.search(re.escape(str(pol)) + r":\d+: dmarc needs spf and dkim "
                     r"sections", out)
