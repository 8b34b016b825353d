#!/usr/bin/env bash
# Installs moto's S3-compatible server (PyPI `moto[server]`) into a venv at a
# stable path, once, and prints the path of its `moto_server` binary. The
# object-storage tests start their own server from it on a free port
# (ADCAST_TEST_MOTO, which infra/test.sh exports from this script's output).
#
#   MOTO=$(bash infra/moto.sh)
#
# Idempotent: a venv whose moto_server runs is reused as it is.
set -euo pipefail
VENV="${ADCAST_MOTO_VENV:-/var/tmp/adcast-ci-tools/moto}"
MOTO_VERSION="${ADCAST_MOTO_VERSION:-5.2.5}"
server="$VENV/bin/moto_server"
if ! "$server" --help >/dev/null 2>&1; then
  echo "installing moto[server]==$MOTO_VERSION into $VENV" >&2
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "moto[server]==$MOTO_VERSION" >&2
  "$server" --help >/dev/null
fi
printf '%s\n' "$server"
