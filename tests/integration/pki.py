# SPDX-License-Identifier: Apache-2.0
"""A throw-away PKI for the integration tests, made with the openssl CLI.

Layout (all EC P-256 and SHA-256 unless said otherwise), under one directory:

  root CA "Duet Test Root CA"            self-signed, CA:TRUE, keyCertSign+cRLSign, random
                                         serial; root and intermediate valid from 400+ days ago
  └─ intermediate "Duet Test Intermediate CA"   CA:TRUE pathlen:0
     ├─ server      serverAuth, DNS:server.example, IP:127.0.0.1, CDP/OCSP/caIssuers URLs
     ├─ alice       clientAuth, URI:spiffe://corp/alice
     ├─ expired     serverAuth, notAfter 10 days ago
     ├─ future      serverAuth, notBefore in 10 days
     ├─ revoked     serverAuth, revoked with reason keyCompromise in the intermediate's CRL
     ├─ rsa1024     serverAuth, RSA 1024 key
     └─ sha1        serverAuth, signed with ecdsa-with-SHA1
  └─ constrained CA "Duet Constrained CA" (nameConstraints, only inspected)
  rogue root "Duet Rogue Root CA" (not trusted) └─ rogue leaf (serverAuth, DNS:server.example)
  selfsigned leaf (CA:FALSE, serverAuth)

CRLs: root.crl (nothing revoked), int.crl (the revoked leaf), int-expired.crl (nextUpdate
one second after thisUpdate, so expired by the time the tests run), DER copies.
Every CA is an `openssl ca` directory with its own index.txt, serial and crlnumber.
"""

import datetime as _dt
import hashlib
import os
import subprocess
import time
from pathlib import Path

PASSWORD = "duet-test-pass"

EXT_CNF = """\
[ req ]
distinguished_name = req_dn
prompt = no
[ req_dn ]
CN = unused

[ v3_root ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[ v3_intermediate ]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ v3_constrained ]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
nameConstraints = critical, permitted;DNS:.example, excluded;DNS:bad.example

[ v3_server ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:server.example, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
crlDistributionPoints = URI:http://127.0.0.1/int.crl
authorityInfoAccess = OCSP;URI:http://127.0.0.1:8080/ocsp, caIssuers;URI:http://127.0.0.1/int.der

[ v3_alice ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = URI:spiffe://corp/alice
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ v3_expired ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:expired.example
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ v3_future ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:future.example
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ v3_revoked ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:revoked.example
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ v3_rsa1024 ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:rsa1024.example
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ v3_sha1 ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:sha1.example
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ v3_rogue_leaf ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:server.example
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ v3_selfsigned ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:selfsigned.example
subjectKeyIdentifier = hash

[ crl_ext ]
authorityKeyIdentifier = keyid:always
"""

CA_CNF = """\
[ ca ]
default_ca = CA_default

[ CA_default ]
dir = {dir}
database = $dir/index.txt
serial = $dir/serial
crlnumber = $dir/crlnumber
new_certs_dir = $dir/newcerts
certificate = $dir/ca.pem
private_key = $dir/ca.key
default_md = sha256
default_days = 365
default_crl_days = 30
policy = policy_any
unique_subject = no
copy_extensions = none
email_in_dn = no
crl_extensions = crl_ext

[ policy_any ]
countryName = optional
organizationName = optional
organizationalUnitName = optional
commonName = supplied

[ crl_ext ]
authorityKeyIdentifier = keyid:always
"""


def openssl(*args, cwd=None, input=None):
    """Runs the openssl CLI; raises with its stderr when it fails."""
    p = subprocess.run(["openssl", *map(str, args)], cwd=cwd, input=input,
                       capture_output=True)
    if p.returncode != 0:
        raise RuntimeError("openssl %s failed (%d):\n%s" % (
            " ".join(map(str, args)), p.returncode, p.stderr.decode(errors="replace")))
    return p.stdout


def asn1_time(t):
    """A datetime as the YYMMDDHHMMSSZ that `openssl ca -startdate/-enddate` accept."""
    return t.strftime("%y%m%d%H%M%SZ")


def colon_hex(hexstr):
    """'1A2B' -> '1A:2B' (upper case, pairs)."""
    h = hexstr.strip().upper()
    if len(h) % 2:
        h = "0" + h
    return ":".join(h[i:i + 2] for i in range(0, len(h), 2))


class CA:
    """An `openssl ca` directory."""

    def __init__(self, pki, name, cert, key, first_serial):
        self.pki = pki
        self.name = name
        self.dir = pki.dir / (name + "-ca")
        (self.dir / "newcerts").mkdir(parents=True)
        (self.dir / "index.txt").write_text("")
        (self.dir / "index.txt.attr").write_text("unique_subject = no\n")
        (self.dir / "serial").write_text(first_serial + "\n")
        (self.dir / "crlnumber").write_text("01\n")
        if cert is not None:
            (self.dir / "ca.pem").write_bytes(Path(cert).read_bytes())
        (self.dir / "ca.key").write_bytes(Path(key).read_bytes())
        self.cnf = self.dir / "ca.cnf"
        self.cnf.write_text(CA_CNF.format(dir=self.dir))

    def sign(self, csr, out, ext, md="sha256", start=None, end=None, days=365,
             selfsign=False):
        args = ["ca", "-batch", "-notext", "-config", self.cnf, "-in", csr, "-out", out,
                "-extfile", self.pki.ext_cnf, "-extensions", ext, "-md", md]
        if selfsign:
            # A root with a long random serial, like `openssl req -x509` would give it.
            args += ["-selfsign", "-rand_serial"]
        if start is not None:
            args += ["-startdate", asn1_time(start)]
        if end is not None:
            args += ["-enddate", asn1_time(end)]
        else:
            args += ["-days", days]
        openssl(*args)
        if selfsign:
            (self.dir / "ca.pem").write_bytes(Path(out).read_bytes())

    def revoke(self, cert, reason):
        openssl("ca", "-batch", "-config", self.cnf, "-revoke", cert, "-crl_reason", reason)

    def gencrl(self, out, *extra):
        openssl("ca", "-batch", "-config", self.cnf, "-gencrl", "-out", out, *extra)


class PKI:
    """Builds every file the tests need; attributes are Paths."""

    def __init__(self, directory):
        self.dir = Path(directory)
        self.ext_cnf = self.dir / "ext.cnf"
        self.ext_cnf.write_text(EXT_CNF)
        self.password = PASSWORD
        self._build()

    # -- helpers ---------------------------------------------------------------------------
    def p(self, name):
        return self.dir / name

    def eckey(self, name):
        path = self.p(name + ".key")
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-pkeyopt", "ec_param_enc:named_curve", "-out", path)
        os.chmod(path, 0o600)
        return path

    def rsakey(self, name, bits):
        path = self.p(name + ".key")
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:%d" % bits,
                "-out", path)
        os.chmod(path, 0o600)
        return path

    def csr(self, name, key, subj):
        path = self.p(name + ".csr")
        openssl("req", "-new", "-config", self.ext_cnf, "-key", key, "-subj", subj, "-out", path)
        return path

    def selfsigned(self, name, key, subj, ext, days=3650):
        path = self.p(name + ".pem")
        openssl("req", "-x509", "-new", "-config", self.ext_cnf, "-extensions", ext,
                "-key", key, "-subj", subj, "-days", days, "-sha256", "-out", path)
        return path

    def leaf(self, ca, name, subj, ext, key=None, **kw):
        key = key or self.eckey(name)
        csr = self.csr(name, key, subj)
        out = self.p(name + ".pem")
        ca.sign(csr, out, ext, **kw)
        return out, key

    def cat(self, name, *parts):
        path = self.p(name)
        path.write_bytes(b"".join(Path(x).read_bytes() for x in parts))
        return path

    # -- the PKI ---------------------------------------------------------------------------
    def _build(self):
        now = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0)
        self.now = now

        # Roots.  The root and the intermediate start long before every leaf, so that a
        # verification --at a past time fails on the leaf, not on its CAs.
        self.root_key = self.eckey("root")
        self.root_ca = CA(self, "root", None, self.root_key, "51A0")
        self.root = self.p("root.pem")
        self.root_ca.sign(self.csr("root", self.root_key, "/O=Duet Test/CN=Duet Test Root CA"),
                          self.root, "v3_root", selfsign=True,
                          start=now - _dt.timedelta(days=500), end=now + _dt.timedelta(days=3650))
        self.rogue_key = self.eckey("rogue-root")
        self.rogue_root = self.selfsigned("rogue-root", self.rogue_key,
                                          "/O=Duet Rogue/CN=Duet Rogue Root CA", "v3_root")
        self.rogue_ca = CA(self, "rogue", self.rogue_root, self.rogue_key, "0BAD01")

        # Intermediates.
        self.int, self.int_key = self.leaf(self.root_ca, "int",
                                           "/O=Duet Test/CN=Duet Test Intermediate CA",
                                           "v3_intermediate",
                                           start=now - _dt.timedelta(days=400),
                                           end=now + _dt.timedelta(days=3000))
        self.int_ca = CA(self, "int", self.int, self.int_key, "6C0001")
        self.constrained, self.constrained_key = self.leaf(
            self.root_ca, "constrained", "/O=Duet Test/CN=Duet Constrained CA",
            "v3_constrained", days=3000)

        # The CRL that expires one second after it is made: made first, so the rest of the
        # build gives it time to lapse.  Nothing is revoked yet; that does not matter for
        # the expiry test.
        self.int_crl_expired = self.p("int-expired.crl")
        self.int_ca.gencrl(self.int_crl_expired, "-crlsec", "1")
        expired_crl_made = time.monotonic()

        # Leaves.
        self.server, self.server_key = self.leaf(self.int_ca, "server",
                                                 "/O=Duet Test/CN=server.example", "v3_server")
        self.alice, self.alice_key = self.leaf(self.int_ca, "alice",
                                               "/O=Duet Test/CN=alice", "v3_alice")
        self.expired, _ = self.leaf(self.int_ca, "expired", "/CN=expired.example", "v3_expired",
                                    start=now - _dt.timedelta(days=100),
                                    end=now - _dt.timedelta(days=10))
        self.future, _ = self.leaf(self.int_ca, "future", "/CN=future.example", "v3_future",
                                   start=now + _dt.timedelta(days=10),
                                   end=now + _dt.timedelta(days=100))
        self.revoked, _ = self.leaf(self.int_ca, "revoked", "/CN=revoked.example", "v3_revoked")
        self.rsa1024, _ = self.leaf(self.int_ca, "rsa1024", "/CN=rsa1024.example", "v3_rsa1024",
                                    key=self.rsakey("rsa1024", 1024))
        self.sha1, _ = self.leaf(self.int_ca, "sha1", "/CN=sha1.example", "v3_sha1", md="sha1")
        self.rogue_leaf, _ = self.leaf(self.rogue_ca, "rogue-leaf", "/CN=server.example",
                                       "v3_rogue_leaf")
        self.selfsigned_leaf = self.selfsigned("selfsigned", self.eckey("selfsigned"),
                                               "/CN=selfsigned.example", "v3_selfsigned",
                                               days=365)

        # Revocation and CRLs.
        self.int_ca.revoke(self.revoked, "keyCompromise")
        self.root_crl = self.p("root.crl")
        self.root_ca.gencrl(self.root_crl, "-crldays", "30")
        self.int_crl = self.p("int.crl")
        self.int_ca.gencrl(self.int_crl, "-crldays", "30")
        self.root_crl_der = self.p("root.crl.der")
        openssl("crl", "-in", self.root_crl, "-outform", "DER", "-out", self.root_crl_der)
        self.int_crl_der = self.p("int.crl.der")
        openssl("crl", "-in", self.int_crl, "-outform", "DER", "-out", self.int_crl_der)

        # Bundles and other encodings.
        chain = lambda leaf: self.cat(Path(leaf).stem + "-chain.pem", leaf, self.int)
        self.server_chain = chain(self.server)
        self.alice_chain = chain(self.alice)
        self.expired_chain = chain(self.expired)
        self.future_chain = chain(self.future)
        self.revoked_chain = chain(self.revoked)
        self.rsa1024_chain = chain(self.rsa1024)
        self.sha1_chain = chain(self.sha1)
        self.server_root_pem = self.cat("server-then-root.pem", self.server, self.root)
        self.server_der = self.p("server.der")
        openssl("x509", "-in", self.server, "-outform", "DER", "-out", self.server_der)

        self.password_file = self.p("password.txt")
        self.password_file.write_text(PASSWORD + "\n")
        os.chmod(self.password_file, 0o600)
        self.wrong_password_file = self.p("wrong-password.txt")
        self.wrong_password_file.write_text("not-the-password\n")
        os.chmod(self.wrong_password_file, 0o600)

        self.alice_p12 = self.p("alice.p12")
        openssl("pkcs12", "-export", "-inkey", self.alice_key, "-in", self.alice,
                "-certfile", self.int, "-name", "alice", "-passout", "file:%s" % self.password_file,
                "-out", self.alice_p12)
        self.alice_p12_legacy = self.p("alice-legacy.p12")
        openssl("pkcs12", "-export", "-legacy", "-inkey", self.alice_key, "-in", self.alice,
                "-certfile", self.int, "-name", "alice",
                "-passout", "file:%s" % self.password_file, "-out", self.alice_p12_legacy)

        self.server_key_encrypted = self.p("server-encrypted.key")
        openssl("pkey", "-in", self.server_key, "-aes256",
                "-passout", "file:%s" % self.password_file, "-out", self.server_key_encrypted)
        os.chmod(self.server_key_encrypted, 0o600)

        # CSRs: one with SANs and usages; a DER copy whose subject was altered after signing.
        csr_key = self.eckey("csr")
        self.csr_pem = self.p("request.csr")
        openssl("req", "-new", "-config", self.ext_cnf, "-key", csr_key,
                "-subj", "/O=Duet Test/CN=csr.example",
                "-addext", "subjectAltName=DNS:csr.example,DNS:www.csr.example,IP:127.0.0.1",
                "-addext", "keyUsage=critical,digitalSignature",
                "-addext", "extendedKeyUsage=serverAuth,clientAuth",
                "-addext", "basicConstraints=critical,CA:FALSE",
                "-out", self.csr_pem)
        der = openssl("req", "-in", self.csr_pem, "-outform", "DER")
        i = der.index(b"csr.example")  # the first occurrence is the subject CN
        self.csr_tampered_der = self.p("tampered.csr.der")
        self.csr_tampered_der.write_bytes(der[:i] + b"csq" + der[i + 3:])

        # Unreadable inputs.
        text = Path(self.server).read_text()
        self.truncated = self.p("truncated.pem")
        self.truncated.write_text(text[: len(text) // 2])
        self.empty = self.p("empty.pem")
        self.empty.write_bytes(b"")
        self.a_directory = self.p("a-directory")
        self.a_directory.mkdir()
        self.missing = self.p("does-not-exist.pem")
        self.garbage = self.p("garbage.bin")
        self.garbage.write_bytes(bytes(range(256)) * 4)

        # Let the short-lived CRL lapse (it was made > 1 s ago in most runs already).
        left = 2.2 - (time.monotonic() - expired_crl_made)
        if left > 0:
            time.sleep(left)

    # -- facts read back with openssl, to compare duet's output with -------------------------
    def serial(self, cert):
        """The serial of a PEM certificate as colon hex, upper case ("51:A0")."""
        out = openssl("x509", "-in", cert, "-noout", "-serial").decode().strip()
        return colon_hex(out.split("=", 1)[1])

    def fingerprint(self, cert):
        """`openssl x509 -fingerprint -sha256`'s value, e.g. "AB:CD:..."."""
        out = openssl("x509", "-in", cert, "-noout", "-fingerprint", "-sha256").decode().strip()
        return out.split("=", 1)[1]

    def spki_sha256(self, cert):
        """Raw SHA-256 digest of the SubjectPublicKeyInfo of a PEM certificate."""
        pub = openssl("x509", "-in", cert, "-noout", "-pubkey")
        der = openssl("pkey", "-pubin", "-outform", "DER", input=pub)
        return hashlib.sha256(der).digest()

    def ski(self, cert):
        """The subjectKeyIdentifier as bare upper-case hex."""
        out = openssl("x509", "-in", cert, "-noout", "-ext", "subjectKeyIdentifier").decode()
        return out.strip().splitlines()[-1].strip().replace(":", "").upper()

    def dates(self, cert):
        """(notBefore, notAfter) as aware datetimes."""
        out = openssl("x509", "-in", cert, "-noout", "-startdate", "-enddate").decode()
        vals = dict(line.split("=", 1) for line in out.strip().splitlines())
        fmt = "%b %d %H:%M:%S %Y %Z"
        parse = lambda s: _dt.datetime.strptime(" ".join(s.split()), fmt).replace(
            tzinfo=_dt.timezone.utc)
        return parse(vals["notBefore"]), parse(vals["notAfter"])

    def crl_dates(self, crl):
        """(thisUpdate, nextUpdate) of a PEM CRL as aware datetimes."""
        out = openssl("crl", "-in", crl, "-noout", "-lastupdate", "-nextupdate").decode()
        vals = dict(line.split("=", 1) for line in out.strip().splitlines())
        fmt = "%b %d %H:%M:%S %Y %Z"
        parse = lambda s: _dt.datetime.strptime(" ".join(s.split()), fmt).replace(
            tzinfo=_dt.timezone.utc)
        return parse(vals["lastUpdate"]), parse(vals["nextUpdate"])
