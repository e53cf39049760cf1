# SPDX-License-Identifier: Apache-2.0
"""Indirect CRLs in `duet cert verify` (RFC 5280 5.2.5 indirectCRL, 5.3.3 certificateIssuer,
6.3.3 (b)(1) and (f)), attacker cases first: a CRL issuer under another trust anchor, a
certificate whose distribution point does not name the CRL issuer, an entry of issuer A that
must not revoke the same serial of issuer B, certificateIssuer carried to the entries after it.
"""

import pytest

from indirectpki import IndirectPKI
from test_cert_verify import assert_bad_input, assert_invalid, assert_valid


@pytest.fixture(scope="module")
def ipki(tmp_path_factory):
    return IndirectPKI(tmp_path_factory.mktemp("indirect"))


def verify(run, ipki, leaf, *crls, trusted=None, untrusted=None):
    args = ["cert", "verify", "--trusted", trusted or ipki.root,
            "--untrusted", untrusted or ipki.untrusted, "--purpose", "client"]
    for c in crls:
        args += ["--crl", c]
    return run(*args, leaf)


def test_indirect_crl_signed_under_another_anchor_is_refused(run, ipki):
    """A CA named as the CRL issuer, but under "Evil Root": even with that root trusted, the
    CRL signer must validate to the certificate's own trust anchor (6.3.3 (f))."""
    p = verify(run, ipki, ipki.leaf_a1, ipki.evil_crl, ipki.root_crl,
               trusted=ipki.both_roots, untrusted=ipki.untrusted_evil)
    assert_invalid(p, "20:01", "the CRL naming CN=Ind CRL Issuer,O=Duet Indirect as issuer",
                   "is not signed by that CA's key",
                   "its path must validate to the same trust anchor, CN=Ind Root")


def test_indirect_crl_without_its_signer_certificate_is_refused(run, ipki):
    p = verify(run, ipki, ipki.leaf_a4, ipki.indirect_crl, ipki.root_crl, untrusted=ipki.a_pem)
    assert_invalid(p, "20:04", "is not signed by that CA's key",
                   "no certificate of that name was given to validate as its signer")


def test_indirect_crl_not_used_when_the_cdp_does_not_name_its_issuer(run, ipki):
    """The CRL lists A's 0x2001, but this certificate names no cRLIssuer: the indirect CRL
    is not one for it, so it has no CRL at all (refused, not valid, not revoked)."""
    p = verify(run, ipki, ipki.leaf_a1_nocdp, ipki.indirect_crl, ipki.root_crl)
    assert_invalid(p, "20:01", "no CRL from CN=Ind Issuing A,O=Duet Indirect was given",
                   "the CRLs given are from: CN=Ind CRL Issuer,O=Duet Indirect")
    # With A's own (empty) CRL it is covered, and the indirect CRL's entry does not touch it.
    assert_valid(verify(run, ipki, ipki.leaf_a1_nocdp, ipki.indirect_crl, ipki.root_crl,
                        ipki.a_crl))


def test_entry_of_issuer_a_does_not_revoke_serial_of_issuer_b(run, ipki):
    assert_invalid(verify(run, ipki, ipki.leaf_a1, ipki.indirect_crl, ipki.root_crl), "20:01",
                   "was revoked on", "(reason: keyCompromise)",
                   "by the CRL of CN=Ind CRL Issuer,O=Duet Indirect")
    # B's certificate with the same serial 0x2001 is not listed.
    p = verify(run, ipki, ipki.leaf_b1, ipki.indirect_crl, ipki.root_crl)
    assert_valid(p)
    assert "serial 20:01" in p.stdout
    assert_invalid(verify(run, ipki, ipki.leaf_b3, ipki.indirect_crl, ipki.root_crl), "30:00",
                   "was revoked on")


def test_certificate_issuer_carries_over_to_following_entries(run, ipki):
    """0x2002 has no certificateIssuer; the entry before it names A, so it is A's."""
    assert_invalid(verify(run, ipki, ipki.leaf_a2, ipki.indirect_crl, ipki.root_crl), "20:02",
                   "was revoked on", "by the CRL of CN=Ind CRL Issuer")
    assert_valid(verify(run, ipki, ipki.leaf_a4, ipki.indirect_crl, ipki.root_crl))


def test_indirect_crl_entry_rules_at_load(run, ipki):
    assert_bad_input(verify(run, ipki, ipki.leaf_a1, ipki.noncritical_ci_crl),
                     ipki.noncritical_ci_crl,
                     "entry 1 has a certificateIssuer extension that is not critical; "
                     "RFC 5280 5.3.3 requires it critical")
    assert_bad_input(verify(run, ipki, ipki.leaf_a1, ipki.unknown_crit_crl),
                     ipki.unknown_crit_crl,
                     "entry 1 has a critical extension duet does not handle "
                     "(OID 1.3.6.1.4.1.99999.7)")
