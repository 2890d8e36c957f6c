#!/usr/bin/env bash
# The whole test run: Python deps, release build, Rust unit tests, integration suite.
# Run from anywhere; needs the Rust toolchain and Python 3.11 + pip.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"

echo "==> pip install -r integration/requirements.txt"
"$PYTHON" -m pip install -q --disable-pip-version-check --root-user-action=ignore \
    -r integration/requirements.txt

echo "==> integration/clients/install.sh (kcat, node, kafkajs)"
bash integration/clients/install.sh

echo "==> cargo build --release --bin chronik-server"
cargo build --release --bin chronik-server

echo "==> cargo test --release --workspace"
cargo test --release --workspace

echo "==> pytest integration/tests integration/clients"
# Per-test timeout bounds a hung broker; the suite itself takes a few minutes.
"$PYTHON" -m pytest integration/tests integration/clients -v --timeout=300 --durations=15
