"""DKIM material for tests: keys and their DNS records, signing and
verifying with dkimpy (Debian's python3-dkim), the independent
implementation Warden is checked against.

Keys are dkimpy's own test keys (shipped in its package under
dkim/tests/data) or fresh ones made here; ``Key.records(domain)`` gives
the (name, "TXT", strings) rows DNSTestServer serves, split into
255-octet strings as DNS requires."""

import base64
import os
import re

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from wardentest import dot_unstuff

DKIMPY_DATA = os.path.join(os.path.dirname(dkim.__file__), "tests", "data")


def _read(name):
    with open(os.path.join(DKIMPY_DATA, name), "rb") as f:
        return f.read()


class Key:
    """A signing key: ``private`` as dkimpy takes it, ``pem`` (None for
    dkimpy's raw Ed25519 test key) for Warden, ``record`` the TXT value."""

    def __init__(self, alg, selector, private, record, pem=None):
        self.alg = alg                  # b"rsa-sha256" or b"ed25519-sha256"
        self.selector = selector
        self.private = private
        self.record = record
        self.pem = pem

    @classmethod
    def dkimpy_rsa(cls, selector="test"):
        """dkimpy's 1024-bit RSA test key (test.private / test.txt)."""
        return cls(b"rsa-sha256", selector, _read("test.private"),
                   _read("test.txt").decode().strip(),
                   pem=_read("test.private"))

    @classmethod
    def dkimpy_ed25519(cls, selector="ed"):
        """dkimpy's Ed25519 test key (RFC 8463's example key)."""
        return cls(b"ed25519-sha256", selector,
                   _read("ed25519test.key").strip(),
                   "v=DKIM1; " + _read("ed25519test.dns").decode().strip())

    @classmethod
    def new_rsa(cls, selector, bits=2048):
        k = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        pem = k.private_bytes(serialization.Encoding.PEM,
                              serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
        der = k.public_key().public_bytes(
            serialization.Encoding.DER,
            serialization.PublicFormat.SubjectPublicKeyInfo)
        return cls(b"rsa-sha256", selector, pem,
                   "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode(),
                   pem=pem)

    @classmethod
    def new_ed25519(cls, selector):
        k = ed25519.Ed25519PrivateKey.generate()
        pem = k.private_bytes(serialization.Encoding.PEM,
                              serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
        seed = k.private_bytes(serialization.Encoding.Raw,
                               serialization.PrivateFormat.Raw,
                               serialization.NoEncryption())
        raw = k.public_key().public_bytes(serialization.Encoding.Raw,
                                          serialization.PublicFormat.Raw)
        return cls(b"ed25519-sha256", selector, base64.b64encode(seed),
                   "v=DKIM1; k=ed25519; p=" + base64.b64encode(raw).decode(),
                   pem=pem)

    def records(self, domain):
        """DNSTestServer rows for <selector>._domainkey.<domain>."""
        r = self.record
        return [("%s._domainkey.%s" % (self.selector, domain), "TXT",
                 [r[i:i + 255] for i in range(0, len(r), 255)])]

    def sign(self, message, domain, canon=(b"relaxed", b"simple"),
             length=False, headers=None):
        """The DKIM-Signature field (bytes, CRLF-terminated) dkimpy makes
        for message (bytes, CRLF lines, not dot-stuffed)."""
        return dkim.sign(message, self.selector.encode(), domain.encode(),
                         self.private, canonicalize=canon,
                         signature_algorithm=self.alg, length=length,
                         include_headers=headers, linesep=b"\r\n")


def dkimpy_verify(message, records, stuffed=True):
    """dkimpy's verdict on message (as a backend received it: dot-stuffed
    for DATA), with keys from records (DNSTestServer rows)."""
    zone = {name.lower().rstrip(".") + ".": "".join(v) if isinstance(v, list)
            else v for name, rtype, v in records if rtype == "TXT"}

    def dnsfunc(name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        v = zone.get(name.lower().rstrip(".") + ".")
        return v.encode() if v else None

    data = dot_unstuff(message) if stuffed else message
    return dkim.verify(data, dnsfunc=dnsfunc)


def header_fields(message, name):
    """The values of every field called name in message's header."""
    head = message.split(b"\r\n\r\n", 1)[0]
    out = []
    for m in re.finditer(rb"(?im)^" + re.escape(name.encode()) +
                         rb":[ \t]?([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)", head):
        out.append(m.group(1).decode())
    return out


def authres(message):
    """The Authentication-Results field Warden added (the first one)."""
    fields = header_fields(message, "Authentication-Results")
    return fields[0] if fields else None
