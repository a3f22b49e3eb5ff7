#!/usr/bin/env bash
# Installs what pgqgo's tests need and a fresh machine may lack:
#  - PostgreSQL server binaries (initdb, postgres), if none are found;
#  - Skytools' PgQ 3.5 C extension (Debian package postgresql-NN-pgq3), which
#    the differential tests and benchmarks compare against.
#  - Skytools' pgq_node and londiste SQL (postgresql-NN-pgq-node, -londiste-sql), adopted
#    together with PgQ by the upgrade tests.
#  - Debian's pgqd (Skytools' C ticker daemon), the ticker benchmarks' baseline.
#  - Debian's python3-pgq (Skytools' Python consumer), the consumer benchmark's baseline,
#    and python3-londiste, replicating through the adoption tests.
#  - valgrind, which counts the instructions of the trigger benchmark.
#  - chromium, the headless browser the status page's tests drive.
# Idempotent: does nothing when everything is present. Needs root (or sudo)
# only when something must be installed.
set -euo pipefail

find_bindir() {
  local d
  if command -v pg_config >/dev/null 2>&1; then
    d=$(pg_config --bindir 2>/dev/null || true)
    [ -x "$d/initdb" ] && [ -x "$d/postgres" ] && { echo "$d"; return; }
  fi
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -V -r); do
    [ -x "$d/initdb" ] && [ -x "$d/postgres" ] && { echo "$d"; return; }
  done
  if command -v initdb >/dev/null 2>&1; then dirname "$(command -v initdb)"; return; fi
}

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
updated=""
apt_install() {
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-deps: please install $* (no apt-get on this machine)" >&2
    exit 1
  fi
  [ -n "$updated" ] || { $SUDO apt-get update -qq; updated=1; }
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

bindir=$(find_bindir || true)
if [ -z "$bindir" ]; then
  echo "install-deps: installing PostgreSQL server" >&2
  apt_install postgresql
  bindir=$(find_bindir)
fi
major=$(basename "$(dirname "$bindir")")
case "$major" in (*[!0-9]*|"") major=$("$bindir/postgres" --version | sed -E 's/.* ([0-9]+)[.].*/\1/');; esac

sharedir=$("$bindir/pg_config" --sharedir 2>/dev/null || echo "/usr/share/postgresql/$major")
if [ ! -f "$sharedir/extension/pgq.control" ]; then
  echo "install-deps: installing Skytools PgQ (postgresql-$major-pgq3) for differential tests" >&2
  apt_install "postgresql-$major-pgq3"
fi

if [ ! -f "$sharedir/extension/pgq_node.control" ] || [ ! -f "$sharedir/extension/londiste.control" ]; then
  echo "install-deps: installing Skytools pgq_node and londiste SQL for the adoption tests" >&2
  apt_install "postgresql-$major-pgq-node" "postgresql-$major-londiste-sql"
fi

if ! command -v pgqd >/dev/null 2>&1; then
  echo "install-deps: installing pgqd for the ticker benchmarks" >&2
  apt_install pgqd
fi

if ! command -v londiste >/dev/null 2>&1; then
  echo "install-deps: installing python3-londiste (Skytools' londiste) for the adoption tests" >&2
  apt_install python3-londiste
fi

if ! /usr/bin/python3 -c 'import pgq, skytools' >/dev/null 2>&1; then
  echo "install-deps: installing python3-pgq (Skytools' Python consumer) for the consumer benchmark" >&2
  apt_install python3-pgq
fi

if ! command -v valgrind >/dev/null 2>&1; then
  echo "install-deps: installing valgrind for the instruction-count benchmark" >&2
  apt_install valgrind
fi

if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  echo "install-deps: installing chromium (headless) for the status page's browser tests" >&2
  apt_install chromium
fi

# PostgreSQL refuses to run as root; the test harness then runs it as 'postgres'.
if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
  useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
fi
