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
cargo test --workspace --all-targets -q
cargo test --workspace --doc -q

step "conformance summaries"
for pkg in iga-adapter iga-connector-ldap iga-connector-flatfile iga-connector-scim; do
  cargo test -q -p "$pkg" --test conformance -- --nocapture 2>/dev/null | grep -E '^conformance [^ ]+ passed=' || {
    echo "no conformance summary from $pkg"; exit 1; }
done

step "cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps -q

step "benchmark smoke run"
scripts/bench-smoke.sh

step "done"
