# SPDX-License-Identifier: Apache-2.0
"""A name-constrained chain made with the openssl CLI, for the name-constraint tests of
`duet cert verify` and `duet proxy`.

    NC Test Root (no constraints)
      └─ intermediate NAME: nameConstraints from the caller (critical)
           └─ leaves with the subjectAltNames the caller gives, serverAuth and clientAuth

Every certificate is what `openssl x509 -req` writes from an extension section, as an
operator's private CA built with OpenSSL would be.
"""

import os
import subprocess
from pathlib import Path

CNF = """\
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = unused
[ root ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ inter ]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
nameConstraints = critical, {nc}
[ leaf ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = {sans}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""


def openssl(*args):
    p = subprocess.run(["openssl", *map(str, args)], capture_output=True)
    if p.returncode != 0:
        raise RuntimeError("openssl %s failed (%d):\n%s" % (
            " ".join(map(str, args)), p.returncode, p.stderr.decode(errors="replace")))
    return p.stdout


class NCChain:
    """Files under `directory`: root.pem, NAME.pem (intermediate), LEAF.pem and LEAF.key,
    LEAF-chain.pem (leaf then intermediate)."""

    def __init__(self, directory, name, constraints):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.root, self.root_key = self._make("root", "/O=NC Test/CN=NC Test Root", "root")
        self.inter, self.inter_key = self._make(
            name, "/O=NC Test/CN=%s" % name, "inter", nc=", ".join(constraints),
            issuer=(self.root, self.root_key))
        self.name = name

    def _key(self, name):
        key = self.dir / (name + ".key")
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-out", key)
        os.chmod(key, 0o600)
        return key

    def _make(self, name, subj, section, nc="permitted;DNS:unused", sans="DNS:unused",
              issuer=None):
        cnf = self.dir / (name + ".cnf")
        cnf.write_text(CNF.format(nc=nc, sans=sans))
        key = self._key(name)
        out = self.dir / (name + ".pem")
        if issuer is None:
            openssl("req", "-x509", "-new", "-config", cnf, "-extensions", section, "-key", key,
                    "-subj", subj, "-days", 30, "-sha256", "-out", out)
        else:
            csr = self.dir / (name + ".csr")
            openssl("req", "-new", "-config", cnf, "-key", key, "-subj", subj, "-out", csr)
            openssl("x509", "-req", "-in", csr, "-CA", issuer[0], "-CAkey", issuer[1],
                    "-CAcreateserial", "-days", 30, "-sha256", "-extfile", cnf,
                    "-extensions", section, "-out", out)
        return out, key

    def leaf(self, name, cn, sans):
        """A leaf under the intermediate: (chain file, key file, leaf file)."""
        crt, key = self._make(name, "/O=NC Test/CN=%s" % cn, "leaf", sans=", ".join(sans),
                              issuer=(self.inter, self.inter_key))
        chain = self.dir / (name + "-chain.pem")
        chain.write_bytes(crt.read_bytes() + self.inter.read_bytes())
        return chain, key, crt

    def serial(self, cert):
        """Colon hex, as duet prints it."""
        h = openssl("x509", "-in", cert, "-noout", "-serial").decode().split("=", 1)[1].strip()
        h = h.upper()
        if len(h) % 2:
            h = "0" + h
        return ":".join(h[i:i + 2] for i in range(0, len(h), 2))
