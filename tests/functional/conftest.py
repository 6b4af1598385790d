"""
Fixtures for Warden's functional tests (see wardentest.py for the API).

- warden_bin: path of the warden binary from $WARDEN_BIN (session).
- capture: a running CaptureBackend with default options.
- capture_factory: make CaptureBackends with options; all stopped after.
- warden_factory: start Wardens; all stopped after, and the test errors
  if one crashed (SIGSEGV/SIGABRT/...) or logged a sanitizer report.
- warden: a Warden in front of ``capture`` with the test defaults.
- smtp_client: make SMTPClients (connected when given a port); closed after.
- postfix: a private Postfix relaying to its own SinkServer (``.sink``).
- postfix_factory: make PostfixInstances with options; all stopped after.
- tls_cert: (cert_path, key_path), self-signed for CN=localhost (session).
"""

import os
import shutil
import signal
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import wardentest  # noqa: E402

CRASH_SIGNALS = {-signal.SIGSEGV, -signal.SIGABRT, -signal.SIGBUS,
                 -signal.SIGILL, -signal.SIGFPE}


@pytest.fixture(autouse=True)
def _tmp_path_reachable(request):
    """Warden started as root runs as an unprivileged user; a reload reads
    policy files from the test's tmp_path, so that user must reach it."""
    if os.geteuid() == 0 and "tmp_path" in request.fixturenames:
        wardentest.share_with_test_user(request.getfixturevalue("tmp_path"))


@pytest.fixture(scope="session")
def warden_bin():
    """The warden binary from $WARDEN_BIN; skips when unset, errors when
    set to something that is not an executable file."""
    path = os.environ.get("WARDEN_BIN")
    if not path:
        pytest.skip("WARDEN_BIN is not set (run through ctest, or export "
                    "WARDEN_BIN=/path/to/build/warden)")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail("WARDEN_BIN=%s is not an executable file" % path)
    return path


@pytest.fixture
def capture_factory():
    """capture_factory(**CaptureBackend options) -> CaptureBackend."""
    made = []

    def make(**kw):
        b = wardentest.CaptureBackend(**kw)
        made.append(b)
        return b
    yield make
    for b in made:
        b.stop()


@pytest.fixture
def capture(capture_factory):
    """A CaptureBackend with default options (stopped after the test)."""
    return capture_factory()


@pytest.fixture
def warden_factory(warden_bin):
    """warden_factory(config=None, backend=None, **Warden options) ->
    started Warden. All are stopped after the test; a crash or sanitizer
    report in any of them makes the test error."""
    made = []

    def make(config=None, backend=None, **kw):
        kw.setdefault("bin_path", warden_bin)
        w = wardentest.Warden(config, backend, **kw)
        made.append(w)
        return w
    yield make
    problems = []
    for w in made:
        died_alone = w.proc is not None and w.proc.poll() is not None \
            and w.returncode is None
        rc = w.stop()
        if died_alone and rc in CRASH_SIGNALS:
            problems.append("warden pid %s crashed with signal %d:\n%s" % (
                w.pid, -rc, wardentest._tail(w.log())))
        san = w.sanitizer_errors()
        if san:
            problems.append("sanitizer report from warden pid %s:\n%s" % (
                w.pid, wardentest._tail(w.log())))
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def warden(warden_factory, capture):
    """A Warden with the test defaults relaying to ``capture``."""
    return warden_factory(backend=capture)


@pytest.fixture
def smtp_client():
    """smtp_client(port=None, **SMTPClient options) -> SMTPClient."""
    made = []

    def make(port=None, **kw):
        c = wardentest.SMTPClient(port, **kw)
        made.append(c)
        return c
    yield make
    for c in made:
        c.close()


def _postfix_usable():
    if os.geteuid() != 0:
        return "a private Postfix needs root"
    if not os.path.exists("/usr/sbin/postfix"):
        return "postfix is not installed"
    return None


@pytest.fixture
def postfix_factory():
    """postfix_factory(relay_to=None, **PostfixInstance options) ->
    started PostfixInstance (with its own SinkServer when relay_to is
    None). All stopped after the test."""
    why = _postfix_usable()
    if why:
        pytest.skip(why)
    made = []

    def make(relay_to=None, **kw):
        p = wardentest.PostfixInstance(relay_to, **kw)
        made.append(p)
        return p
    yield make
    for p in made:
        p.stop()


@pytest.fixture
def postfix(postfix_factory):
    """A private Postfix on 127.0.0.1:<port> relaying to ``.sink``."""
    return postfix_factory()


@pytest.fixture(scope="session")
def tls_cert():
    """(cert_path, key_path): self-signed RSA-2048, CN=localhost."""
    d = tempfile.mkdtemp(prefix="warden-cert-")
    try:
        yield wardentest.make_cert(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)
