"""RFC 7208 conformance: the published SPF test suite (openspf.org 2014.04,
/usr/share/doc/python3-spf/rfc7208-tests.yml.gz) run through Warden's own
SPF path: tests/tools/spf_eval calls spf_evaluate() (libspf2 with Warden's
DNS layer, limits and record checks, and dnsq), with each scenario's zone
data served by a real DNS server on 127.0.0.1 (spfsuite.py).

One pytest item per case, so ``pytest -v`` reports passed/failed per case;
test_pass_count prints the whole table. The known libspf2 limitations are
listed in KNOWN_FAILURES by case name, each with its reason, as strict
xfails: a case that starts passing fails the run (take it off the list),
and any other case that fails is a regression.

Only the result is compared. The suite's ``explanation`` values are not:
Warden never fetches exp= texts (replies carry the admin's own text, and
an explanation is one more lookup the sender controls).
"""

import os
import subprocess

import pytest

from spfsuite import SUITE, SuiteServer, load_suite

DNS_TIMEOUT_MS = 300   # the suite's TIMEOUT entries cost this each
MIN_PASS = 197         # of 203; raise it when a limitation is fixed

_LEN0 = ("libspf2 cannot hold a CIDR length of 0 (inside it 0 means \"no "
         "length given\") and refuses the record. Warden rewrites /0 where "
         "an equivalent term exists (ip4:/0 and ip6:/0 as the two /1 "
         "halves, a:D/0 for an IPv4 client as exists:D, the other family's "
         "length dropped), but ")
KNOWN_FAILURES = {
    "a-cidr6-0-ip6": _LEN0 + "\"a//0\" for an IPv6 client (does the "
                     "domain have any AAAA record?) has no equivalent: "
                     "permerror instead of pass.",
    "a-cidr6-0-nxdomain": _LEN0 + "\"a//0\" for an IPv6 client has no "
                          "equivalent: permerror instead of fail.",
    "mx-nxdomain": _LEN0 + "\"mx/0\" (does any MX host have an A "
                   "record?) has no equivalent: permerror instead of fail.",
    "mx-cidr4-0": _LEN0 + "\"mx/0\" has no equivalent: permerror instead "
                  "of pass.",
    "mx-cidr6-0-ip6": _LEN0 + "\"mx//0\" has no equivalent: permerror "
                      "instead of pass.",
    "mx-cidr6-0-nxdomain": _LEN0 + "\"mx//0\" has no equivalent: "
                           "permerror instead of fail.",
}

# pyspf's old result names, still used by a few cases
_OLD = {"unknown": "permerror", "error": "temperror"}

pytestmark = pytest.mark.skipif(not os.path.exists(SUITE),
                                reason="python3-spf's test suite is missing")


def _cases():
    if not os.path.exists(SUITE):
        return []
    return [(desc, name, data) for desc, _, tests in load_suite()
            for name, data in tests.items()]


def _expected(data):
    r = data["result"]
    return [_OLD.get(x, x) for x in (r if isinstance(r, list) else [r])]


@pytest.fixture(scope="module")
def spf_eval():
    path = os.environ.get("WARDEN_SPF_EVAL")
    if not path:
        pytest.skip("WARDEN_SPF_EVAL is not set (run through ctest)")
    if not os.access(path, os.X_OK):
        pytest.fail("WARDEN_SPF_EVAL=%s is not executable" % path)
    return path


@pytest.fixture(scope="module")
def results(spf_eval):
    """{case: (got, why)}: every scenario against its own DNS server, its
    cases through one spf_eval process."""
    out = {}
    for _, zone, tests in load_suite():
        names = list(tests)
        lines = "".join("%s\t%s\t%s\n" % (tests[n]["host"],
                                          tests[n].get("helo") or "",
                                          tests[n].get("mailfrom") or "")
                        for n in names)
        server = SuiteServer(zone)
        try:
            proc = subprocess.run(
                [spf_eval, "--dns", server.address,
                 "--timeout", str(DNS_TIMEOUT_MS)],
                input=lines, capture_output=True, text=True, timeout=300)
        finally:
            server.stop()
        answers = proc.stdout.splitlines()
        assert proc.returncode == 0 and len(answers) == len(names), \
            "spf_eval failed:\n" + proc.stderr[-4000:]
        for name, line in zip(names, answers):
            got, _, why = line.partition("\t")
            out[name] = (got, why)
    return out


def _param(desc, name, data):
    marks = []
    if name in KNOWN_FAILURES:
        marks.append(pytest.mark.xfail(strict=True,
                                       reason=KNOWN_FAILURES[name]))
    return pytest.param(desc, name, data, id=name, marks=marks)


@pytest.mark.parametrize("desc,name,data",
                         [_param(*c) for c in _cases()])
def test_case(results, desc, name, data):
    got, why = results[name]
    assert got in _expected(data), (
        "%s (%s, RFC 7208 %s): got %s%s, expected %s" % (
            name, desc, data.get("spec", "?"), got,
            " (%s)" % why if why else "", " or ".join(_expected(data))))


def test_known_failures_are_suite_cases():
    names = {n for _, n, _ in _cases()}
    assert set(KNOWN_FAILURES) <= names


def test_pass_count(results):
    rows, passed = [], 0
    for desc, name, data in _cases():
        got, why = results[name]
        ok = got in _expected(data)
        passed += ok
        rows.append("%-4s %-32s %-10s expected %-20s %s" % (
            "ok" if ok else "FAIL", name, got, "/".join(_expected(data)),
            why))
    print("\nRFC 7208 test suite through Warden's SPF path: %d of %d cases "
          "pass\n%s" % (passed, len(rows), "\n".join(rows)))
    assert passed >= MIN_PASS, "%d cases pass, expected at least %d" % (
        passed, MIN_PASS)
