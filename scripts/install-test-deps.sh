#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine (root, registries reachable):
#   - Debian packages listed in scripts/apt-packages.txt (real servers for the real-server tier)
#   - a Python virtualenv at .venv with scripts/python-requirements.txt (SCIM server, JOSE verifier)
# Idempotent: re-running is fast when everything is present.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

# --- Debian packages -------------------------------------------------------------------
mapfile -t PKGS < <(grep -v '^\s*#' scripts/apt-packages.txt | grep -v '^\s*$' || true)
MISSING=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || MISSING+=("$p")
done
if [ ${#MISSING[@]} -gt 0 ]; then
  echo "install-test-deps: apt-get install ${MISSING[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  # Never start distro services: the tests start their own servers on loopback.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${MISSING[@]}" >/dev/null
fi

# --- Python virtualenv -----------------------------------------------------------------
REQ=scripts/python-requirements.txt
STAMP=.venv/.requirements.sha256
WANT=$(sha256sum "$REQ" | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  echo "install-test-deps: creating .venv from $REQ"
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r "$REQ"
  echo "$WANT" > "$STAMP"
fi
echo "install-test-deps: ok"
