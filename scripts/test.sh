#!/usr/bin/env bash
# test.sh runs every test with the kernel-level ones turned on, prints the
# go test output, and closes with one count line:
#
#   tests: 42 passed, 0 failed, 0 skipped
#
# Under GOCELL_PRIV_TESTS=1 nothing may skip: a skipped kernel-level test
# proves nothing, so a skip fails the run, the same as a failure.
#
# Usage: scripts/test.sh [go test packages...]   (default ./...)
set -uo pipefail

log=$(mktemp)
trap 'rm -f "$log"' EXIT

export GOCELL_PRIV_TESTS=1
# Statically linked test binaries: gocell-runtime's tests run a copy of
# their own binary inside containers, which have no dynamic loader (the
# VM's tests are built so too). Nothing in gocell needs cgo.
export CGO_ENABLED=0
# -p 1: one package at a time. The kernel-level tests of different
# packages share this machine's settings: gocell's tests and the network
# package's switch IPv4 forwarding on and, at their end, back to what they
# found, and each checks that it is so; side by side, one would switch it
# off under the other's feet. Steps 03 to 07 also pivot into one shared
# root file system, which 08's test fingerprints. The VM runs them one
# after the other too.
go test -p 1 -v -count=1 "${@:-./...}" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

# Top-level and sub-test results alike: "--- PASS: TestX (0.01s)".
passed=$(grep -cE '^\s*--- PASS: ' "$log")
failed=$(grep -cE '^\s*--- FAIL: ' "$log")
skipped=$(grep -cE '^\s*--- SKIP: ' "$log")

# The -v output is long: what went wrong is repeated at its end, where a
# reader looks, with the first lines each failing test printed.
echo
if [ "$failed" -gt 0 ]; then
	echo "these tests failed (their own output is above):"
	grep -E '^\s*--- FAIL: ' "$log" | sed 's/^\s*--- FAIL: /  /'
	# Packages that failed to build or whose test binary died say so on
	# a FAIL line of their own.
	grep -E '^FAIL\s+\S+\s+\[(build failed|setup failed)\]' "$log" | sed 's/^/  /'
fi
if [ "$skipped" -gt 0 ]; then
	echo "these tests skipped, which GOCELL_PRIV_TESTS=1 does not allow:"
	grep -E -A1 '^\s*--- SKIP: ' "$log"
	[ "$status" -eq 0 ] && status=1
fi
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ] && [ "$skipped" -eq 0 ]; then
	echo "go test failed outside any test (a build error, or a test binary that died):"
	grep -E '^(FAIL|panic:|# )' "$log" | head -20 | sed 's/^/  /'
fi
echo "tests: $passed passed, $failed failed, $skipped skipped"
exit "$status"
