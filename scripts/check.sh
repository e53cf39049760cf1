#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# `make check`: build with warnings as errors, run the unit tests, build and
# run them again under AddressSanitizer + UBSan, replay the fuzz corpora, run
# the integration tests against the real binary, then print one summary.
# The last line is always "N passed, N failed"; the exit status is 0 only
# when nothing failed.  A stage that cannot even run counts as one failure.
set -u
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
ASAN_BUILD=${ASAN_BUILD:-build-asan}
REPORTS=$BUILD-reports
rm -rf "$REPORTS"
mkdir -p "$REPORTS"
stage_failures=0

stage() { printf '\n==> %s\n' "$*"; }
fail_stage() { echo "check: stage failed: $*" >&2; stage_failures=$((stage_failures + 1)); }

stage "build ($BUILD)"
if [ ! -f "$BUILD/build.ninja" ]; then
    meson setup "$BUILD" -Dwerror_ci=true >/dev/null || fail_stage "meson setup $BUILD"
else
    meson configure "$BUILD" -Dwerror_ci=true >/dev/null || fail_stage "meson configure $BUILD"
fi
built=0
ninja -C "$BUILD" && built=1 || fail_stage "build"

if [ $built = 1 ]; then
    stage "unit tests"
    meson test -C "$BUILD" --suite unit --print-errorlogs --num-processes 2 >"$REPORTS/unit.log" 2>&1 ||
        true
    tail -n 25 "$REPORTS/unit.log"
    cp "$BUILD/meson-logs/testlog.junit.xml" "$REPORTS/unit.junit.xml" 2>/dev/null ||
        fail_stage "unit tests left no report"

    if [ -d tests/fuzz ] && ls tests/fuzz/*_fuzz.c >/dev/null 2>&1; then
        stage "fuzz corpus replay"
        meson test -C "$BUILD" --suite fuzz-replay --print-errorlogs >"$REPORTS/fuzz.log" 2>&1 ||
            true
        tail -n 12 "$REPORTS/fuzz.log"
        cp "$BUILD/meson-logs/testlog.junit.xml" "$REPORTS/fuzz.junit.xml" 2>/dev/null ||
            fail_stage "fuzz replay left no report"
    fi
fi

stage "unit tests under AddressSanitizer + UBSan ($ASAN_BUILD)"
if [ ! -f "$ASAN_BUILD/build.ninja" ]; then
    meson setup "$ASAN_BUILD" -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug \
        -Dc_args=-fno-sanitize-recover=all -Dwerror_ci=true >/dev/null ||
        fail_stage "meson setup $ASAN_BUILD"
fi
if ninja -C "$ASAN_BUILD"; then
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
        meson test -C "$ASAN_BUILD" --suite unit --print-errorlogs --num-processes 2 \
        >"$REPORTS/asan.log" 2>&1 || true
    tail -n 25 "$REPORTS/asan.log"
    cp "$ASAN_BUILD/meson-logs/testlog.junit.xml" "$REPORTS/asan.junit.xml" 2>/dev/null ||
        fail_stage "asan unit tests left no report"
else
    fail_stage "asan build"
fi

# Servers the integration tests start get ports from a range of each run's own (free_port() in
# tests/integration/proxyutil.py), below the kernel's ephemeral ports (32768-60999 by default):
# no client connection's local port, and no other test process, is handed one of them, so the
# two runs may one day go side by side.
if [ $built = 1 ]; then
    stage "integration tests"
    DUET_TEST_PORTS=20000-25999 DUET_BIN="$(pwd)/$BUILD/duet" \
        /usr/bin/python3 -m pytest -q -p no:cacheprovider \
        --junitxml="$REPORTS/integration.junit.xml" tests/integration ||
        true
    [ -f "$REPORTS/integration.junit.xml" ] || fail_stage "integration tests left no report"
fi

if [ -x "$ASAN_BUILD/duet" ]; then
    # The proxy's event-driven code (connections, pool, reload) under the sanitizers, with real
    # peers. Leak checking is off: the proxy exits without tearing connections down.
    stage "proxy integration tests on the ASan + UBSan binary"
    ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
        DUET_TEST_PORTS=26000-31999 DUET_BIN="$(pwd)/$ASAN_BUILD/duet" \
        /usr/bin/python3 -m pytest -q -p no:cacheprovider \
        --junitxml="$REPORTS/integration-asan.junit.xml" -o junit_suite_name=integration-asan \
        tests/integration/test_proxy.py tests/integration/test_upstream_pool.py \
        tests/integration/test_revocation_scale.py \
        tests/integration/test_security_http.py tests/integration/test_security_proxy_ops.py \
        tests/integration/test_security_headers_log.py tests/integration/test_security_resume.py \
        tests/integration/test_review_http.py tests/integration/test_proxy_signals.py \
        tests/integration/test_proxy_logging.py tests/integration/test_proxy_readiness.py \
        tests/integration/test_proxy_lifecycle.py tests/integration/test_proxy_websocket.py \
        tests/integration/test_proxy_h2.py \
        tests/integration/test_proxy_alert_close.py tests/integration/test_ca_serve.py \
        tests/integration/test_proxy_crl_url.py tests/integration/test_proxy_ocsp_staple.py \
        tests/integration/test_proxy_ocsp_check.py tests/integration/test_proxy_ocsp_recheck.py \
        tests/integration/test_proxy_h2_limits.py tests/integration/test_proxy_h2up.py \
        tests/integration/test_proxy_grpc.py tests/integration/test_proxy_path_rules.py \
        tests/integration/test_proxy_head_refusals.py tests/integration/test_proxy_h2up_share.py \
        tests/integration/test_proxy_ocsp_recheck_reload.py \
        --deselect \
        tests/integration/test_proxy_crl_url.py::test_a_million_entry_crl_is_fetched_and_refreshed_while_handshakes_go_on ||
        true
    [ -f "$REPORTS/integration-asan.junit.xml" ] ||
        fail_stage "proxy integration tests under ASan left no report"
fi

stage "summary"
exec /usr/bin/python3 scripts/junit_summary.py --extra-failures "$stage_failures" "$REPORTS"/*.junit.xml
