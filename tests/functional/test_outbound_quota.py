"""Outbound relay: authenticated users through Warden in front of a real
Postfix submission service (Cyrus SASL with a test sasldb), with a
per-user quota that Warden enforces with 4xx so the client retries later."""

import base64
import grp
import os
import pwd
import subprocess

import pytest

from wardentest import SMTPClient, dump_yaml


@pytest.fixture
def submission(postfix_factory):
    pf = postfix_factory(
        smtpd_sasl_auth_enable="yes", smtpd_sasl_type="cyrus",
        smtpd_sasl_local_domain="example.com",
        # relaying only for authenticated users: the real client address
        # (via XCLIENT) is not in mynetworks
        mynetworks="127.0.0.254/32",
        smtpd_relay_restrictions="permit_sasl_authenticated, "
                                 "reject_unauth_destination",
        relay_domains="")
    # Postfix's Cyrus SASL reads <config_directory>/sasl/smtpd.conf; the
    # user database sits beside it, where the postfix user can read it
    sasl = os.path.join(pf.config_dir, "sasl")
    os.makedirs(sasl, mode=0o755, exist_ok=True)
    db = os.path.join(sasl, "sasldb2")
    for user, pw in (("alice", b"alicepw"), ("bob", b"bobpw")):
        subprocess.run(["saslpasswd2", "-f", db, "-p", "-c", "-u",
                        "example.com", user], input=pw, check=True)
    os.chown(db, pwd.getpwnam("postfix").pw_uid,
             grp.getgrnam("postfix").gr_gid)
    os.chmod(db, 0o640)
    with open(os.path.join(sasl, "smtpd.conf"), "w") as f:
        f.write("pwcheck_method: auxprop\nauxprop_plugin: sasldb\n"
                "mech_list: PLAIN LOGIN\nsasldb_path: %s\n" % db)
    return pf


def plain(user, pw):
    return base64.b64encode(b"\0" + user + b"\0" + pw).decode()


def relay(w, user, pw, n):
    c = SMTPClient()
    c.connect(w.port, source=("127.0.0.80", 0))
    c.expect(220)
    c.ehlo("laptop.example")
    c.cmd("AUTH PLAIN " + plain(user, pw), expect=235)
    codes = []
    for i in range(n):
        r = c.cmd("MAIL FROM:<%s>" % user.decode())
        if r.code == 250:
            c.cmd("RCPT TO:<friend%d@elsewhere.example>" % i, expect=250)
            c.cmd("DATA", expect=354)
            c.send(b"Subject: outbound %d\r\n\r\nhi\r\n.\r\n" % i)
            r = c.read_reply()
        codes.append(r.code)
    c.cmd("QUIT")
    return codes


def test_per_user_quota_through_postfix(warden_factory, submission,
                                        tmp_path):
    pol = tmp_path / "quota.yaml"
    pol.write_text(dump_yaml({"limits": [{
        "name": "per-user-hourly", "key": "user", "count": "messages",
        "rate": ["2/1h", "10/1d"], "authenticated": True,
        "reply": "451 4.7.1 Sending quota exceeded, try again later"}]}))
    w = warden_factory({"backend": {"client_identity": "xclient"},
                        "policies": [str(pol)]}, submission)
    assert relay(w, b"alice@example.com", b"alicepw", 3) == [250, 250, 451]
    # another user has their own quota
    assert relay(w, b"bob@example.com", b"bobpw", 1) == [250]
    msgs = submission.sink.wait_messages(3, timeout=30)
    assert len(msgs) == 3
    submission.wait_log(r"sasl_method=PLAIN, sasl_username=alice@example.com")
    w.wait_log(r"limit per-user-hourly \(messages, 2/1h\) exceeded: "
               r"key=l:per-user-hourly:user=alice@example\.com\|")


def test_wrong_password_is_not_a_user(warden_factory, submission):
    w = warden_factory({"backend": {"client_identity": "xclient"}},
                       submission)
    c = SMTPClient()
    c.connect(w.port, source=("127.0.0.81", 0))
    c.expect(220)
    c.ehlo()
    assert c.cmd("AUTH PLAIN " + plain(b"alice@example.com", b"nope")).code \
        == 535
    # not authenticated: Postfix refuses to relay
    c.cmd("MAIL FROM:<alice@example.com>", expect=250)
    assert c.cmd("RCPT TO:<x@elsewhere.example>").code == 554
    assert "authenticated:" not in w.log()
