#!/usr/bin/env bash
# Runs every iga-benches binary at a small smoke size and checks that its last output
# line has the documented shape `<name> key=value key=value ...`.
# A binary without an entry below fails the run, so new benchmarks cannot be forgotten.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

declare -A SMOKE_ARGS=(
  [ledger_import]="--rules 20000"
  [ledger_ops]="--ops 2000"
  [batch_revocations]="--ops 100"
  [receipts]="--receipts 2000"
  [pipeline]="--directives 2000"
  [ldap_pipeline]="--ops 100"
  [flatfile_import]="--rows 20000"
  [policy_eval]="--identities 500 --rules 50"
  [entra_batch]="--ops 200"
  [role_intel]="--identities 1500 --rules 12"
  [detect]="--approvals 6 --interval-ms 500 --spacing-ms 100"
)

shopt -s nullglob
BINS=()
for f in benches/src/bin/*.rs; do BINS+=("$(basename "$f" .rs)"); done
if [ ${#BINS[@]} -eq 0 ]; then echo "bench-smoke: no benchmark binaries yet"; exit 0; fi

cargo build -q -p iga-benches --bins
BIN_DIR="${CARGO_TARGET_DIR:-target}/debug"
FAIL=0
for b in "${BINS[@]}"; do
  if [ -z "${SMOKE_ARGS[$b]+x}" ]; then
    echo "bench-smoke: $b has no smoke arguments in scripts/bench-smoke.sh"; FAIL=1; continue
  fi
  # shellcheck disable=SC2086
  OUT=$("$BIN_DIR/$b" ${SMOKE_ARGS[$b]} 2>&1) || { echo "$OUT"; echo "bench-smoke: $b exited non-zero"; FAIL=1; continue; }
  LAST=$(printf '%s\n' "$OUT" | tail -n 1)
  if [[ "$LAST" =~ ^$b(\ [a-z_][a-z0-9_]*=[^[:space:]]+)+$ ]]; then
    echo "bench-smoke: ok   $LAST"
  else
    echo "$OUT" | tail -n 5
    echo "bench-smoke: $b last line does not parse: $LAST"; FAIL=1
  fi
done
exit $FAIL
