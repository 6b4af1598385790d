"""DKIM signing for outbound mail: an authenticated user whose From:
domain has a key and who may send for that domain gets the message signed
(DKIM-Signature added before it reaches the backend), and dkimpy, the
independent implementation, verifies what the backend received (2048- and
1024-bit RSA keys, DATA and BDAT); a user who may not send for the From:
domain, an unauthenticated client, or a domain with no key: not signed,
and the log says why. warden -t checks the key files, and refuses Ed25519
signing keys while Debian 12's libopendkim leaks them (see dkimsign.h)."""

import re

import pytest

from dkimtest import Key, dkimpy_verify, header_fields
from wardentest import SMTPClient, check_config

RSA = Key.new_rsa("mail2024")
SMALL = Key.new_rsa("s1024", bits=1024)
ED = Key.new_ed25519("ed")


def msg(from_addr, extra=b""):
    return (b"From: Someone <%s>\r\nTo: friend@elsewhere.example\r\n"
            b"Subject: outbound\r\nDate: Mon, 01 Jan 2024 00:00:00 +0000\r\n"
            b"Message-ID: <out-1@example.com>\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: text/plain\r\n\r\n"
            b"Hi,\r\n.a line that starts with a dot\r\n..and two dots\r\n"
            b"\r\nBye.  \r\n%s" % (from_addr.encode(), extra))


def write_policy(tmp_path):
    (tmp_path / "example.com.pem").write_bytes(RSA.pem)
    (tmp_path / "other.pem").write_bytes(SMALL.pem)
    pol = tmp_path / "sign.yaml"
    pol.write_text("""\
dkim_sign:
  keys:
    - domain: example.com
      selector: mail2024
      key: example.com.pem
    - domain: other.example
      selector: s1024
      key: other.pem
  senders:
    - users: ["*@example.com"]
      domains: [example.com, "*.example.com"]
    - users: [bob]
      domains: [other.example]
""")
    return pol


ZONE = RSA.records("example.com") + SMALL.records("other.example")


@pytest.fixture
def signer(warden_factory, capture_factory, tmp_path):
    def make(user="alice@example.com"):
        cap = capture_factory(auth_success_user=user, auth_password="pw")
        w = warden_factory({"policies": [str(write_policy(tmp_path))]}, cap)
        return w, cap
    return make


def send(w, message, user=None, bdat=False):
    import base64
    c = SMTPClient(w.port)
    c.expect(220)
    c.ehlo("laptop.example")
    if user:
        c.cmd("AUTH PLAIN " + base64.b64encode(
            b"\0" + user.encode() + b"\0pw").decode(), expect=235)
    if not bdat:
        r = c.sendmail("sender@example.com", ["friend@elsewhere.example"],
                       message)
    else:
        c.cmd("MAIL FROM:<sender@example.com>", expect=250)
        c.cmd("RCPT TO:<friend@elsewhere.example>", expect=250)
        c.send(b"BDAT %d LAST\r\n" % len(message) + message)
        r = c.read_reply()
    c.cmd("QUIT")
    return r


def signatures(message):
    return header_fields(message, "DKIM-Signature")


def tag(sig, name):
    m = re.search(r"(?:^|;)\s*%s=([^;]*)" % name, sig)
    return re.sub(r"\s", "", m.group(1)) if m else None


def test_rsa_signature_verified_by_dkimpy(signer):
    w, cap = signer()
    assert send(w, msg("alice@example.com"), "alice@example.com").code == 250
    out = cap.wait_messages(1)[0]
    [sig] = signatures(out)
    assert (tag(sig, "d"), tag(sig, "s"), tag(sig, "a"), tag(sig, "c")) == \
        ("example.com", "mail2024", "rsa-sha256", "relaxed/relaxed")
    signed = [h.lower() for h in tag(sig, "h").split(":")]
    assert signed.count("from") == 2          # From is oversigned
    for h in ("to", "subject", "date", "message-id", "mime-version",
              "content-type"):
        assert h in signed
    assert out.startswith(b"DKIM-Signature: ")
    assert dkimpy_verify(out, ZONE)
    w.wait_log(r"dkim_sign=signed user=alice@example\.com "
               r"from_domain=<example\.com> d=example\.com s=mail2024 "
               r"a=rsa-sha256")


def test_subdomain_signed_with_parent_key(signer):
    w, cap = signer()
    assert send(w, msg("news@news.example.com"),
                "alice@example.com").code == 250
    out = cap.wait_messages(1)[0]
    [sig] = signatures(out)
    assert tag(sig, "d") == "example.com"
    assert dkimpy_verify(out, ZONE)


def test_second_key_and_user(signer):
    w, cap = signer("bob")
    assert send(w, msg("bob@other.example"), "bob").code == 250
    out = cap.wait_messages(1)[0]
    [sig] = signatures(out)
    assert (tag(sig, "d"), tag(sig, "s")) == ("other.example", "s1024")
    assert dkimpy_verify(out, ZONE)


def test_bdat_message_signed(signer):
    w, cap = signer()
    m = msg("alice@example.com")
    assert send(w, m, "alice@example.com", bdat=True).code == 250
    out = cap.wait_messages(1)[0]
    assert len(signatures(out)) == 1
    assert dkimpy_verify(out, ZONE, stuffed=False)


def test_tampering_after_signing_is_detected(signer):
    """The signature covers what it says: dkimpy fails it after a change."""
    w, cap = signer()
    send(w, msg("alice@example.com"), "alice@example.com")
    out = cap.wait_messages(1)[0]
    assert not dkimpy_verify(out.replace(b"Bye.", b"Buy!"), ZONE)
    # a second From: added above the signed one breaks it (oversigned)
    assert not dkimpy_verify(out.replace(
        b"From: Someone", b"From: ceo@example.com\r\nFrom: Someone"), ZONE)


def test_user_not_allowed_for_domain_is_not_signed(signer):
    w, cap = signer()
    assert send(w, msg("ceo@other.example"), "alice@example.com").code == 250
    out = cap.wait_messages(1)[0]
    assert signatures(out) == []
    w.wait_log(r'dkim_sign=skipped user=alice@example\.com '
               r'from_domain=<other\.example> reason="user may not send as '
               r'other\.example"')


def test_domain_without_key_is_not_signed(signer):
    w, cap = signer()
    assert send(w, msg("alice@unknown.example"),
                "alice@example.com").code == 250
    assert signatures(cap.wait_messages(1)[0]) == []
    w.wait_log(r'dkim_sign=skipped .*reason="no key for the From: domain"')


def test_unauthenticated_is_not_signed(signer):
    w, cap = signer()
    assert send(w, msg("alice@example.com")).code == 250
    assert signatures(cap.wait_messages(1)[0]) == []
    assert "dkim_sign=" not in w.log()


def test_several_from_addresses_not_signed(signer):
    w, cap = signer()
    m = msg("alice@example.com").replace(
        b"From: Someone <alice@example.com>",
        b"From: alice@example.com, mallory@evil.example")
    assert send(w, m, "alice@example.com").code == 250
    assert signatures(cap.wait_messages(1)[0]) == []
    w.wait_log(r'dkim_sign=skipped .*reason="several From: addresses"')


def test_config_check_key_files(tmp_path):
    (tmp_path / "notakey.pem").write_text("hello\n")
    (tmp_path / "ok.pem").write_bytes(RSA.pem)
    (tmp_path / "small.pem").write_bytes(Key.new_rsa("s", bits=512).pem)
    (tmp_path / "ed.pem").write_bytes(ED.pem)
    pol = tmp_path / "sign.yaml"
    pol.write_text("""\
dkim_sign:
  keys:
    - domain: example.com
      selector: s1
      key: missing.pem
    - domain: example.org
      selector: s1
      key: notakey.pem
    - domain: example.net
      selector: "bad selector"
      key: ok.pem
    - domain: example.info
      selector: s1
      key: small.pem
    - domain: ed.example
      selector: ed
      key: ed.pem
  senders:
    - users: ["*@example.com"]
      domains: [example.com, other.example]
""")
    rc, out = check_config({"policies": [str(pol)]})
    assert rc != 0
    assert "%s:5: dkim_sign.keys[0].key: cannot read \"%s/missing.pem\"" % (
        pol, tmp_path) in out
    assert "%s:8: dkim_sign.keys[1].key: \"%s/notakey.pem\": not a PEM " \
           "private key" % (pol, tmp_path) in out
    assert "%s:10: dkim_sign.keys[2].selector:" % pol in out
    assert "%s:14: dkim_sign.keys[3].key: \"%s/small.pem\": a 512-bit RSA " \
           "key: at least 1024 bits" % (pol, tmp_path) in out
    assert "%s:17: dkim_sign.keys[4].key: \"%s/ed.pem\": an Ed25519 key: " \
           "not used for signing" % (pol, tmp_path) in out
    assert "%s:20: dkim_sign.senders[0].domains: no key in dkim_sign.keys " \
           "signs for other.example" % pol in out
