"""`warden -t -c FILE`: every error as file:line: reason, non-zero exit;
the shipped example config and policy validate."""

import os
import subprocess

from wardentest import check_config

SRC = os.environ.get("WARDEN_SOURCE_DIR",
                     os.path.join(os.path.dirname(__file__), "..", ".."))


def run_t(warden_bin, path):
    r = subprocess.run([warden_bin, "-t", "-c", path], capture_output=True,
                       text=True, timeout=30)
    return r.returncode, r.stdout + r.stderr


def test_valid_config(warden_bin):
    rc, out = check_config({"limits": {"max_connections": 50}},
                           bin_path=warden_bin)
    assert rc == 0 and "configuration ok" in out


def test_errors_have_file_and_line(warden_bin, tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("listen:\n"
                 "  - address: 127.0.0.1:2525\n"
                 "    tls: sometimes\n"
                 "backend:\n"
                 "  address: 127.0.0.1:notaport\n"
                 "  client_identity: xclent\n"
                 "limits:\n"
                 "  max_command_line: 100\n"
                 "  max_message_size: 10q\n"
                 "listn: oops\n"
                 "timeouts:\n"
                 "  command: -5s\n")
    rc, out = run_t(warden_bin, str(p))
    assert rc != 0
    for line in (3, 5, 6, 8, 9, 10, 12):
        assert "%s:%d: " % (p, line) in out, out
    assert 'unknown key "listn"' in out
    assert "xclent" in out


def test_unknown_nested_key(warden_bin, tmp_path):
    p = tmp_path / "nested.yaml"
    p.write_text("backend:\n  address: 127.0.0.1:25\n  adress: typo\n")
    rc, out = run_t(warden_bin, str(p))
    assert rc != 0 and "%s:3: " % p in out and "adress" in out


def test_yaml_syntax_error(warden_bin, tmp_path):
    p = tmp_path / "syntax.yaml"
    p.write_text("listen:\n  - address: [unclosed\n")
    rc, out = run_t(warden_bin, str(p))
    assert rc != 0 and str(p) + ":" in out


def test_missing_file(warden_bin, tmp_path):
    rc, out = run_t(warden_bin, str(tmp_path / "absent.yaml"))
    assert rc != 0 and "absent.yaml" in out


def test_policy_errors_reported(warden_bin, tmp_path):
    pol = tmp_path / "access.yaml"
    pol.write_text("access:\n"
                   "  - networks: [192.0.2.0/24]\n"
                   "    action: reject\n"
                   "  - networks: [192.0.2.1/24, 300.1.1.1]\n"
                   "    action: reject\n"
                   "  - networks: [198.51.100.0/24]\n"
                   "    action: reject\n"
                   "    reply: \"250 ok\"\n")
    cfg = tmp_path / "w.yaml"
    cfg.write_text("policies: [access.yaml]\n")
    rc, out = run_t(warden_bin, str(cfg))
    assert rc != 0
    assert "%s:4: " % pol in out
    assert "%s:8: " % pol in out


def test_tls_key_mismatch_reported(warden_bin, tmp_path, tls_cert):
    cert, _ = tls_cert
    other = tmp_path / "other.key"
    subprocess.run(["openssl", "genrsa", "-out", str(other), "2048"],
                   capture_output=True, check=True)
    cfg = tmp_path / "tls.yaml"
    cfg.write_text("tls:\n  certificate: %s\n  key: %s\n" % (cert, other))
    rc, out = run_t(warden_bin, str(cfg))
    assert rc != 0 and "other.key" in out and "mismatch" in out


def test_shipped_examples_validate(warden_bin, tmp_path):
    rc, out = run_t(warden_bin, os.path.join(SRC, "contrib", "warden.yaml"))
    assert rc == 0, out
    cfg = tmp_path / "with-policies.yaml"
    cfg.write_text("policies: [%s]\n" % os.path.abspath(
        os.path.join(SRC, "policies", "access.yaml")))
    rc, out = run_t(warden_bin, str(cfg))
    assert rc == 0, out


def test_embedded_defaults(warden_bin):
    r = subprocess.run([warden_bin, "-t"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0 and "(defaults)" in r.stdout
