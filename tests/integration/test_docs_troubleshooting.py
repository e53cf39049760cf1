# SPDX-License-Identifier: Apache-2.0
"""docs/troubleshooting.md stays complete: every machine code duet can report, read from the C
source, has its entry there, so that a new code without an explanation fails here.

Codes: the verification categories (verify_fail_code), the handshake reason codes
(tls_fail_name), the `duet ca serve` JSON errors with their HTTP status, the proxy's request
refusals and connection closures, the CRL fetch codes, the OCSP staple codes and the findings
of `duet doctor`."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "troubleshooting.md"


def src(path):
    return (REPO / path).read_text()


def doc():
    return DOC.read_text()


def quoted(text):
    """Every code written `like_this` in the page."""
    return set(re.findall(r"`([a-z0-9_]+)`", text))


def verify_codes():
    text = src("src/lib/verify.c")
    table = text.split("fail_codes[VERIFY_FAIL_COUNT] = {", 1)[1].split("};", 1)[0]
    codes = re.findall(r'\[VERIFY_[A-Z_]+\]\s*=\s*"([a-z_]+)"', table)
    enum = src("src/lib/verify.h").split("enum verify_fail {", 1)[1].split("};", 1)[0]
    members = [m for m in re.findall(r"^\s*(VERIFY_[A-Z_]+)", enum, re.M)
               if m != "VERIFY_FAIL_COUNT"]
    assert len(codes) == len(members), "every enum verify_fail member has its machine name"
    return codes


def tls_codes():
    text = src("src/lib/tls.c")
    body = text.split("tls_fail_name(enum tls_fail f)", 1)[1].split("}", 1)[0]
    names = re.findall(r'"([a-z_]+)"', body)
    enum = src("src/lib/tls.h").split("enum tls_fail {", 1)[1].split("};", 1)[0]
    members = [m for m in re.findall(r"^\s*(TLS_FAIL_[A-Z_]+)", enum, re.M)
               if m != "TLS_FAIL_COUNT"]
    assert len(names) == len(members), "every enum tls_fail member has its name"
    return names


def caserver_errors():
    """(status, code) of every JSON error `duet ca serve` answers."""
    pairs = set()
    for path in sorted((REPO / "src" / "caserver").glob("*.c")):
        text = path.read_text()
        pairs |= set(re.findall(r'caserver_reply_error\(\s*&?r,\s*(\d{3}),\s*"([a-z_]+)"', text))
        pairs |= set(re.findall(r'refuse\(ref,\s*(\d{3}),\s*"([a-z_]+)"', text))
        for status, body in re.findall(r'caserver_reply_json\(\s*r,\s*(\d{3}),(.{0,120})', text,
                                       re.S):
            m = re.search(r'"error",\s*"([a-z_]+)"', body)
            if m:
                pairs.add((status, m.group(1)))
        # A status chosen by a condition: both branches, in the same order.
        for cond in re.findall(r'caserver_reply_error\(\s*r,\s*[^,]*\?\s*(\d{3})\s*:\s*(\d{3}),'
                               r'\s*[^?]*\?\s*"([a-z_]+)"\s*:\s*"([a-z_]+)"', text):
            pairs.add((cond[0], cond[2]))
            pairs.add((cond[1], cond[3]))
    return pairs


def proxy_refusals():
    """(status, error) of the proxy's own HTTP refusals, and the closure codes."""
    conn = src("src/proxy/conn.c")
    kinds = re.findall(r'\{"(\d{3})",\s*"([a-z_]+)"\}', conn)
    retire = re.findall(r'conn_retire\(c,\s*"([a-z_]+)"', conn)
    forward = src("src/proxy/forward.c") + conn
    replies = set(re.findall(r'reply\(c,\s*(\d{3}),.{0,80}?"error",\s*"([a-z_]+)"', forward, re.S))
    return kinds, retire, replies


def crl_codes():
    text = src("src/proxy/crlfetch.c")
    codes = set(re.findall(r'fetch_fail\(s,\s*"([a-z_]+)"', text))
    codes |= set(re.findall(r'snprintf\((?:s->)?code,\s*(?:sizeof\(s->code\)|clen),\s*"([a-z_]+)"',
                            text))
    return codes


def staple_codes():
    text = src("src/proxy/staple.c")
    codes = set(re.findall(r'refuse\(code,\s*clen,\s*why,\s*wlen,\s*"([a-z_]+)"', text))
    codes |= set(re.findall(r'"code",\s*"([a-z_]+)"', text))
    return codes


def doctor_codes():
    """The codes of `duet doctor`'s findings: the first string of each doctor_add() call."""
    text = "".join(src(p) for p in ("src/lib/doctor.c", "src/cli/doctor_files.c",
                                     "src/cli/cmd_doctor.c"))
    return set(re.findall(r'doctor_add\(\s*&?[\w>.-]+,\s*[^,"]+,\s*"([a-z_]+)"', text))


def test_the_parsers_find_the_codes():
    """The source still has the shapes read here: a parser finding nothing would pass anything."""
    assert {"expired", "unknown_ca", "crl_stale", "crl_no_crl_sign"} <= set(verify_codes())
    assert {"no_cert", "policy", "name_constraints", "other"} <= set(tls_codes())
    assert {("403", "token_refused"), ("400", "csr_refused"), ("409", "already_renewed"),
            ("401", "certificate_expired"), ("405", "method_not_allowed")} <= caserver_errors()
    kinds, retire, replies = proxy_refusals()
    assert ("431", "header_too_large") in kinds and "max_lifetime" in retire
    assert ("403", "forbidden") in replies and ("502", "bad_gateway") in replies
    assert {"dns", "http_status", "unknown_issuer", "not_newer", "issuer_changed"} <= crl_codes()
    assert {"unknown_signer", "wrong_certificate", "no_next_update", "too_large"} <= staple_codes()
    assert {"key_mismatch", "key_mode", "crl_missing", "admin_exposed"} <= doctor_codes()


def section(text, heading):
    """The text under a heading, up to the next heading of any level."""
    assert heading in text, "the page has the section %r" % heading
    return text.split(heading, 1)[1].split("\n#", 1)[0]


def test_every_verification_code_has_an_entry():
    text = section(doc(), "### Verification codes")
    missing = [c for c in verify_codes()
               if not re.search(r"^\| `%s` \|" % re.escape(c), text, re.M)]
    assert missing == [], "verify_fail codes without a row in docs/troubleshooting.md"


def test_every_handshake_reason_code_has_an_entry():
    text = section(doc(), "### Handshake reason codes")
    missing = [c for c in tls_codes()
               if not re.search(r"^\| `%s` \|" % re.escape(c), text, re.M)]
    assert missing == [], "tls_fail names without a row in docs/troubleshooting.md"


def test_every_ca_server_error_has_its_status():
    text = doc()
    missing = sorted("%s %s" % p for p in caserver_errors()
                     if not re.search(r"^\| %s \| `%s`" % p, text, re.M))
    assert missing == [], "duet ca serve errors without a row (status, code) in the page"


def test_every_proxy_refusal_and_closure_is_explained():
    text = doc()
    kinds, retire, replies = proxy_refusals()
    rows = sorted("%s %s" % p for p in set(kinds) | replies
                  if not re.search(r"^\| %s \| `%s`" % p, text, re.M))
    assert rows == [], "proxy HTTP refusals without a row (status, error) in the page"
    assert set(retire) - quoted(text) == set(), "connection_closed codes missing"


def test_every_crl_and_staple_code_is_explained():
    text = doc()
    crl = section(text, "### CRLs by URL")
    staple = section(text, "### OCSP staples")
    # crlfetch.c fetches the OCSP responses to staple too: its codes are in one or the other.
    assert crl_codes() - quoted(crl) - quoted(staple) == set(), "CRL fetch codes missing"
    assert staple_codes() - quoted(staple) == set(), "staple codes missing from 'OCSP staples'"


def test_every_doctor_finding_has_an_entry():
    text = section(doc(), "### Findings of `duet doctor`")
    missing = [c for c in sorted(doctor_codes())
               if not re.search(r"^\| `%s` \|" % re.escape(c), text, re.M)]
    assert missing == [], "duet doctor codes without a row in docs/troubleshooting.md"
    page = (REPO / "docs" / "cli" / "doctor.md").read_text()
    missing = [c for c in sorted(doctor_codes()) if "| `%s` |" % c not in page]
    assert missing == [], "duet doctor codes without a row in docs/cli/doctor.md"


def slug(heading):
    """GitHub's anchor of a heading."""
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def test_the_page_links_to_its_own_sections_and_is_linked():
    text = doc()
    anchors = {slug(h) for h in re.findall(r"^#+ (.+)$", text, re.M)}
    links = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert links, "the page has its table of contents"
    assert links - anchors == set(), "links to sections that do not exist"
    assert "(docs/troubleshooting.md)" in src("README.md")
    assert "docs/troubleshooting.md" in src("docs/development.md")
    # The probe section points at the command's page (flags, readings, JSON); the examples
    # below it are reports as the probe prints them.
    probe = section(text, "## Diagnose a live endpoint with `duet probe`")
    assert "(cli/probe.md)" in probe
