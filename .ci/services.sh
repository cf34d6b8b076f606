#!/usr/bin/env bash
# Installs (if missing) and starts the services the tests use, on loopback, as throwaway
# instances under /tmp. Sourced by .ci/run; prints the variables it exports.
set -euo pipefail

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
# Headless Chromium for the browser tests (tests/browser).
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

# Redis on a port of its own (a previous run's instance is stopped first).
REDIS_PORT=6390
redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
  --pidfile /tmp/dexpaper-ci-redis.pid >/dev/null
for _ in $(seq 50); do
  redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
  sleep 0.1
done
export TEST_REDIS_URL="redis://127.0.0.1:${REDIS_PORT}/0"

# PostgreSQL: a fresh cluster owned by the postgres user, trusting loopback.
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
PG_PORT=5439
PG_DATA=/tmp/dexpaper-ci-pgdata
if [ -f "$PG_DATA/postmaster.pid" ]; then
  su postgres -s /bin/sh -c "$PG_BIN/pg_ctl -D $PG_DATA -m immediate stop >/dev/null" || true
fi
rm -rf "$PG_DATA"
install -d -o postgres -g postgres "$PG_DATA"
su postgres -s /bin/sh -c "$PG_BIN/initdb -D $PG_DATA -A trust -U postgres >/dev/null"
su postgres -s /bin/sh -c "$PG_BIN/pg_ctl -D $PG_DATA -l /tmp/dexpaper-ci-pg.log -w \
  -o '-p $PG_PORT -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off' start >/dev/null"
export TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:${PG_PORT}/postgres"

stop_services() {
  kill "$(cat /tmp/dexpaper-ci-redis.pid 2>/dev/null)" 2>/dev/null || true
  su postgres -s /bin/sh -c "$PG_BIN/pg_ctl -D $PG_DATA -m fast stop >/dev/null" 2>/dev/null || true
}
echo "services: TEST_REDIS_URL=$TEST_REDIS_URL TEST_POSTGRES_URL=$TEST_POSTGRES_URL"
