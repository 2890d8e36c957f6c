#!/usr/bin/env bash
# Installs what integration/clients/test_clients.py needs besides integration/requirements.txt
# (which already brings aiokafka, kafka-python and the Python codecs):
#   - kcat (Debian's package; librdkafka 2.0.x on bookworm)
#   - node + npm, if missing (Debian's nodejs/npm)
#   - kafkajs 2.2.4, pinned by package-lock.json, into integration/clients/node_modules
#   - chromium (Debian's package) for the console's browser tests, driven by Playwright
#     (integration/requirements.txt) through `executable_path`, so no browser is downloaded
# Idempotent: each step is skipped when its tool is already there. Needs root for apt-get.
set -euo pipefail
cd "$(dirname "$0")"

export DEBIAN_FRONTEND=noninteractive

apt_updated=0
apt_install() {
    if [ "$apt_updated" = 0 ]; then
        apt-get update -q
        apt_updated=1
    fi
    apt-get install -y -q --no-install-recommends "$@"
}

if ! command -v kcat >/dev/null 2>&1; then
    echo "==> apt-get install kcat"
    apt_install kcat
fi

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "==> apt-get install nodejs npm"
    apt_install nodejs npm
fi

if ! command -v chromium >/dev/null 2>&1; then
    echo "==> apt-get install chromium"
    apt_install chromium
fi

want=$(node -p "require('./package-lock.json').packages['node_modules/kafkajs'].version")
have=$(node -p "try { require('./node_modules/kafkajs/package.json').version } catch (e) { '' }")
if [ "$have" != "$want" ]; then
    echo "==> npm ci (kafkajs $want)"
    npm ci --no-audit --no-fund --loglevel=error
fi

echo "==> kcat: $(kcat -V 2>&1 | sed -n 's/^Version //p')"
echo "==> node $(node --version), kafkajs $(node -p "require('./node_modules/kafkajs/package.json').version")"
