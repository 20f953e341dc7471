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
go test -v -count=1 "${@:-./...}" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

# Top-level and sub-test results alike: "--- PASS: TestX (0.01s)".
passed=$(grep -cE '^\s*--- PASS: ' "$log")
failed=$(grep -cE '^\s*--- FAIL: ' "$log")
skipped=$(grep -cE '^\s*--- SKIP: ' "$log")

if [ "$skipped" -gt 0 ]; then
	echo "these tests skipped, which GOCELL_PRIV_TESTS=1 does not allow:"
	grep -E -A1 '^\s*--- SKIP: ' "$log"
	[ "$status" -eq 0 ] && status=1
fi
echo "tests: $passed passed, $failed failed, $skipped skipped"
exit "$status"
