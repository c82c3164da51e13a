#!/usr/bin/env bash
# Install whatever is missing for running and testing the project, idempotently:
# Debian packages (when root), the .venv, the project with all extras, the
# model files and the development PKI with its HSM token.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3

install_debian_packages() {
    local wanted missing=()
    wanted=$(grep -vE '^\s*(#|$)' deploy/debian-packages.txt)
    for pkg in $wanted; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" \
            || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" != 0 ]; then
        echo "setup: missing Debian packages (run as root to install): ${missing[*]}" >&2
        return 0
    fi
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_python() {
    [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
    local stamp=.venv/.installed
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
        .venv/bin/pip install -q --upgrade pip
        .venv/bin/pip install -q -e ".[bridge,edge,dev]"
        touch "$stamp"
    fi
}

install_debian_packages
install_python
.venv/bin/kiosk --log-level WARNING models fetch
.venv/bin/kiosk --log-level WARNING bridge init
