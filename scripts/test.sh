#!/usr/bin/env bash
# Install everything the tests need, make sure PostgreSQL and Redis are up, and run the
# whole suite twice: on SQLite and on PostgreSQL. Extra arguments go to pytest.
set -uo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n== %s\n' "$*"; }

# Debian packages: Chromium for the browser tests; the database and cache servers.
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# Chinese text in the screenshots the browser tests save.
[ -d /usr/share/fonts/opentype/noto ] || missing+=(fonts-noto-cjk)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
# The sharded-bus tests start their own Redis Cluster (3 masters, 3 replicas) from these
# binaries on free loopback ports, and stop it at the end (tests/conftest.py).
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
command -v pg_ctlcluster >/dev/null 2>&1 || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  say "apt-get install ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
    || { echo "could not install ${missing[*]}" >&2; exit 1; }
fi

# Services: start them if they are not running (the commands the machine itself uses).
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  say "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  for _ in $(seq 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
pg_isready -h 127.0.0.1 -p 5432 -q || { echo "PostgreSQL is not running on 127.0.0.1:5432" >&2; exit 1; }
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  say "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 30); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 0.5; done
fi
redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || { echo "Redis is not running on 127.0.0.1:6379" >&2; exit 1; }

say "installing Python packages into .venv"
python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -c constraints.txt -e ".[test]" || exit 1

# The translations: .po -> .mo and the browser's JSON catalogs (the app would compile them
# in memory otherwise; compiled here so the wheel the tests build carries them).
.venv/bin/python -m app.i18n compile >/dev/null || exit 1

# htmx for offline pages, from the npm registry, at the one pinned version.
if [ -f scripts/vendor.sh ]; then bash scripts/vendor.sh || exit 1; fi

export PYTHONDONTWRITEBYTECODE=1
mkdir -p test-artifacts
failed=()
# Static checks first, once: a failure fails the run, but the tests still run so that one
# pass shows every problem. The tools' versions are pinned in constraints.txt.
say "ruff format --check, ruff check, mypy app"
.venv/bin/ruff format --check . || failed+=("ruff format --check . (fix: .venv/bin/ruff format .)")
.venv/bin/ruff check . || failed+=("ruff check .")
.venv/bin/mypy app || failed+=("mypy app")
# The two passes run side by side (each waits mostly on its servers, sockets and browsers,
# so two cores serve both): each has its own temporary directory and databases, and every
# test names its own bus channel. HOMING_TEST_SERIAL=1 runs them one after the other.
run_pass() {  # $1: sqlite|postgres, then pytest's arguments
  local db=$1; shift
  .venv/bin/python -m pytest --db "$db" --basetemp "$tmp_root/$db" --durations=20 "$@"
}
tmp_root=$(mktemp -d /tmp/homing-tests.XXXXXX)
trap 'rm -rf "$tmp_root"' EXIT
if [ "${HOMING_TEST_SERIAL:-0}" = 1 ]; then
  say "tests on SQLite"
  run_pass sqlite "$@" || failed+=("tests on SQLite")
  say "tests on PostgreSQL"
  run_pass postgres "$@" || failed+=("tests on PostgreSQL")
else
  say "tests on SQLite and on PostgreSQL, side by side (each pass's output follows when it ends)"
  run_pass sqlite "$@" >"$tmp_root/sqlite.log" 2>&1 &
  sqlite_pid=$!
  run_pass postgres "$@" >"$tmp_root/postgres.log" 2>&1 &
  postgres_pid=$!
  wait "$sqlite_pid"; sqlite_rc=$?
  say "tests on SQLite"
  cat "$tmp_root/sqlite.log"
  wait "$postgres_pid"; postgres_rc=$?
  say "tests on PostgreSQL"
  cat "$tmp_root/postgres.log"
  [ "$sqlite_rc" = 0 ] || failed+=("tests on SQLite")
  [ "$postgres_rc" = 0 ] || failed+=("tests on PostgreSQL")
fi
if [ ${#failed[@]} -gt 0 ]; then
  say "FAILED:"
  printf '  %s\n' "${failed[@]}" >&2
  exit 1
fi
