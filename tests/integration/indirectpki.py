# SPDX-License-Identifier: Apache-2.0
"""A PKI for indirect CRLs (RFC 5280 5.2.5, 5.3.3, 6.3.3 (b)(1)), made with pyca/cryptography.

Under one root "Ind Root": issuing CAs A and B, and a CRL issuer "Ind CRL Issuer" (cRLSign).
Leaves of A and B name the CRL issuer as the cRLIssuer of their CRL distribution point. The
indirect CRL of the CRL issuer lists (A, 0x2001), then 0x2002 with no certificateIssuer (carried
over from the entry before it: A's), and (B, 0x3000). An attacker's copy: the same CRL signed by
a CA of the same name under another root ("Evil Root"). Every file is PEM; attributes are Paths.
"""

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Duet Indirect"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


NOW = dt.datetime.utcnow().replace(microsecond=0)


def ca_cert(subject, key, issuer=None, issuer_key=None, crl_sign=True):
    issuer = issuer or subject
    issuer_key = issuer_key or key
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(NOW - dt.timedelta(days=1)).not_valid_after(NOW + dt.timedelta(days=365))
         .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
         .add_extension(x509.KeyUsage(False, False, False, False, False, True, crl_sign,
                                      False, False), critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                        critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
             issuer_key.public_key()), critical=False))
    return b.sign(issuer_key, hashes.SHA256())


def leaf_cert(cn, serial, issuer, issuer_key, crl_issuer=None):
    key = ec.generate_private_key(ec.SECP256R1())
    b = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(issuer.subject)
         .public_key(key.public_key()).serial_number(serial)
         .not_valid_before(NOW - dt.timedelta(days=1)).not_valid_after(NOW + dt.timedelta(days=90))
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.KeyUsage(True, False, False, False, False, False, False,
                                      False, False), critical=True)
         .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH,
                                               ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
         .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                        critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
             issuer_key.public_key()), critical=False))
    if crl_issuer is not None:
        b = b.add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
            full_name=None, relative_name=None, reasons=None,
            crl_issuer=[x509.DirectoryName(crl_issuer)])]), critical=False)
    return b.sign(issuer_key, hashes.SHA256()), key


def crl(issuer, key, entries, indirect=True, number=1):
    """entries: (serial, certificateIssuer Name or None, critical) in order."""
    b = (x509.CertificateRevocationListBuilder().issuer_name(issuer)
         .last_update(NOW - dt.timedelta(hours=1)).next_update(NOW + dt.timedelta(days=7))
         .add_extension(x509.CRLNumber(number), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()),
                        critical=False))
    if indirect:
        b = b.add_extension(x509.IssuingDistributionPoint(
            full_name=None, relative_name=None, only_contains_user_certs=False,
            only_contains_ca_certs=False, only_some_reasons=None, indirect_crl=True,
            only_contains_attribute_certs=False), critical=True)
    for serial, ci, critical in entries:
        r = (x509.RevokedCertificateBuilder().serial_number(serial)
             .revocation_date(NOW - dt.timedelta(hours=2))
             .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False))
        if ci is not None:
            r = r.add_extension(x509.CertificateIssuer([x509.DirectoryName(ci)]),
                                critical=critical)
        b = b.add_revoked_certificate(r.build())
    return b.sign(key, hashes.SHA256())


class IndirectPKI:
    def __init__(self, directory):
        self.dir = Path(directory)
        k_root = ec.generate_private_key(ec.SECP256R1())
        root = ca_cert(name("Ind Root"), k_root)
        self.k_a = ec.generate_private_key(ec.SECP256R1())
        self.a = ca_cert(name("Ind Issuing A"), self.k_a, root.subject, k_root)
        self.k_b = ec.generate_private_key(ec.SECP256R1())
        self.b = ca_cert(name("Ind Issuing B"), self.k_b, root.subject, k_root)
        k_ci = ec.generate_private_key(ec.SECP256R1())
        ci = ca_cert(name("Ind CRL Issuer"), k_ci, root.subject, k_root)
        # The attacker: a CA of the CRL issuer's name under another root.
        k_evil_root = ec.generate_private_key(ec.SECP256R1())
        evil_root = ca_cert(name("Evil Root"), k_evil_root)
        k_evil = ec.generate_private_key(ec.SECP256R1())
        evil_ci = ca_cert(name("Ind CRL Issuer"), k_evil, evil_root.subject, k_evil_root)

        self.root = self.write("root.pem", root)
        # The proxy's --cacert: the root, and the CRL issuer's certificate for finding the signer.
        self.root_and_ci = self.write("root-and-crl-issuer.pem", root, ci)
        self.both_roots = self.write("both-roots.pem", root, evil_root)
        self.a_pem = self.write("a.pem", self.a)
        self.b_pem = self.write("b.pem", self.b)
        self.ci = self.write("crl-issuer.pem", ci)
        self.evil_ci = self.write("evil-crl-issuer.pem", evil_ci)
        # Everything a verifier needs besides the leaf: both issuing CAs and the CRL issuer.
        self.untrusted = self.write("untrusted.pem", self.a, self.b, ci)
        self.untrusted_evil = self.write("untrusted-evil.pem", self.a, self.b, evil_ci)
        cin = ci.subject
        self.leaf_a1 = self.leaf("a1", 0x2001, self.a, self.k_a, cin)
        self.leaf_a2 = self.leaf("a2", 0x2002, self.a, self.k_a, cin)
        self.leaf_a4 = self.leaf("a4", 0x2004, self.a, self.k_a, cin)
        self.leaf_b1 = self.leaf("b1", 0x2001, self.b, self.k_b, cin)
        self.leaf_b3 = self.leaf("b3", 0x3000, self.b, self.k_b, cin)
        self.leaf_a1_nocdp = self.leaf("a1-nocdp", 0x2001, self.a, self.k_a, None)
        self.leaf_a4_nocdp = self.leaf("a4-nocdp", 0x2004, self.a, self.k_a, None)
        entries = [(0x2001, self.a.subject, True), (0x2002, None, True),
                   (0x3000, self.b.subject, True)]
        self.indirect_crl = self.write("indirect.crl", crl(cin, k_ci, entries))
        self.evil_crl = self.write("evil-indirect.crl", crl(cin, k_evil, []))
        self.noncritical_ci_crl = self.write(
            "noncritical-ci.crl", crl(cin, k_ci, [(0x2001, self.a.subject, False)]))
        # The root's CRL (its CAs not revoked), so that the whole chain is covered.
        self.root_crl = self.write("root.crl", crl(root.subject, k_root, [], indirect=False))
        # A's and B's own (empty) CRLs, for certificates without a cRLIssuer.
        self.a_crl = self.write("a.crl", crl(self.a.subject, self.k_a, [], indirect=False))
        # An unknown critical entry extension in an indirect CRL.
        self.unknown_crit_crl = self.write("unknown-crit.crl", self._unknown_crit(cin, k_ci))

    def _unknown_crit(self, cin, k_ci):
        b = (x509.CertificateRevocationListBuilder().issuer_name(cin)
             .last_update(NOW - dt.timedelta(hours=1)).next_update(NOW + dt.timedelta(days=7))
             .add_extension(x509.CRLNumber(2), critical=False)
             .add_extension(x509.IssuingDistributionPoint(None, None, False, False, None, True,
                                                          False), critical=True))
        r = (x509.RevokedCertificateBuilder().serial_number(0x2001)
             .revocation_date(NOW - dt.timedelta(hours=2))
             .add_extension(x509.CertificateIssuer([x509.DirectoryName(self.a.subject)]),
                            critical=True)
             .add_extension(x509.UnrecognizedExtension(
                 x509.ObjectIdentifier("1.3.6.1.4.1.99999.7"), b"\x05\x00"), critical=True))
        return b.add_revoked_certificate(r.build()).sign(k_ci, hashes.SHA256())

    def leaf(self, label, serial, issuer, issuer_key, crl_issuer):
        """The leaf's PEM; beside it LABEL-chain.pem (leaf and issuer) and LABEL.key."""
        cert, key = leaf_cert(label + ".example", serial, issuer, issuer_key, crl_issuer)
        self.write(label + "-chain.pem", cert, issuer)
        (self.dir / (label + ".key")).write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        (self.dir / (label + ".key")).chmod(0o600)
        return self.write(label + ".pem", cert)

    def chain(self, leaf):
        return leaf.with_name(leaf.stem + "-chain.pem")

    def key(self, leaf):
        return leaf.with_suffix(".key")

    def write(self, fname, *objs):
        path = self.dir / fname
        path.write_bytes(b"".join(o.public_bytes(serialization.Encoding.PEM) for o in objs))
        return path
