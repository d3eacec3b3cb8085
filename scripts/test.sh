#!/usr/bin/env bash
# The whole test suite, from a clean clone: installs what the tests need, then
# formatting, lints, every test (unit, property, conformance, real-server, scenarios),
# rustdoc, and a smoke run of every benchmark binary.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export CARGO_TERM_COLOR=never
step() { printf '\n=== %s (%ss elapsed)\n' "$1" "$SECONDS"; }

step "install test dependencies"
scripts/install-test-deps.sh

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy"
cargo clippy --workspace --all-targets -q -- -D warnings

step "cargo test"
TEST_LOG=$(mktemp)
trap 'rm -f "$TEST_LOG"' EXIT
cargo test --workspace --all-targets --no-fail-fast -q 2>&1 | tee -a "$TEST_LOG"
cargo test --workspace --doc --no-fail-fast -q 2>&1 | tee -a "$TEST_LOG"

step "conformance summaries"
for pkg in iga-adapter iga-connector-ldap iga-connector-flatfile iga-connector-scim iga-connector-google iga-connector-aws iga-connector-manual iga-connector-webhook iga-connector-okta iga-connector-slack iga-connector-github iga-connector-entra; do
  cargo test -q -p "$pkg" --test conformance -- --nocapture 2>/dev/null | grep -E '^conformance [^ ]+ passed=' || {
    echo "no conformance summary from $pkg"; exit 1; }
done

step "cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps -q

step "benchmark smoke run"
scripts/bench-smoke.sh

step "done"
# One closing line over every test binary and doc-test run above.
awk '/^test result: /{for(i=1;i<=NF;i++){if($(i+1) ~ /^passed;?$/)p+=$i; if($(i+1) ~ /^failed;?$/)f+=$i}} END{printf "tests: %d passed, %d failed\n", p, f}' "$TEST_LOG"
