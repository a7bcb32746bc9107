#!/usr/bin/env bash
# Installs the OS packages the test suite needs, only when they are missing (idempotent, non-interactive).
#
# Each block below checks for what it needs and queues Debian/Ubuntu packages when it is absent;
# `apt-get update` and `apt-get install` run once, at the end, and only if something was queued.
# Runs as root, or through `sudo -n` when available; otherwise it fails and names what to install.
set -euo pipefail

missing=()

# --- PostgreSQL server (tests/postgres_server.py starts one with initdb + pg_ctl) ---------------------
if ! command -v initdb >/dev/null 2>&1 && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    missing+=(postgresql)
fi

# --- Java runtime (Apache Spark local mode, through the pyspark extra) --------------------------------
if ! command -v java >/dev/null 2>&1; then
    missing+=(java)
fi

# --- Browser for the HTML report tests (tests/test_report.py opens reports in headless Chromium) ------
if ! command -v chromium >/dev/null 2>&1; then
    missing+=(chromium)
fi

if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    echo "install_os_packages.sh: missing ${missing[*]}; run this script as root (it uses apt-get)" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_os_packages.sh: missing ${missing[*]} and no apt-get; install them with your package manager" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
packages=()
for need in "${missing[@]}"; do
    case "$need" in
        java)
            # Spark 4.0 (pyspark<4.1) runs on Java 17 or 21; prefer 17, else the distribution's default.
            if apt-cache show openjdk-17-jre-headless >/dev/null 2>&1; then
                packages+=(openjdk-17-jre-headless)
            else
                packages+=(default-jre-headless)
            fi
            ;;
        *) packages+=("$need") ;;
    esac
done
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}"
