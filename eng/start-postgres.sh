#!/usr/bin/env bash
# Installs (Debian's postgresql) and starts a PostgreSQL server on loopback with a role and database for the
# multi-worker sweep tests, then prints the Npgsql connection string to export as ML_CNN_POSTGRES.
# Usage: export ML_CNN_POSTGRES="$(bash eng/start-postgres.sh)"   (as root, or with sudo)
set -euo pipefail
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  as_root apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq postgresql >&2
fi
version=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! pg_lsclusters -h | grep -q "^$version main"; then as_root pg_createcluster "$version" main >&2; fi
if ! pg_lsclusters -h | grep -q "^$version main .* online"; then as_root pg_ctlcluster "$version" main start >&2; fi
psql_admin() { as_root runuser -u postgres -- psql -v ON_ERROR_STOP=1 -qtAX "$@"; }
for i in $(seq 1 30); do psql_admin -c "SELECT 1" >/dev/null 2>&1 && break; sleep 1; done
if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = 'mlcnn'")" != 1 ]; then
  psql_admin -c "CREATE ROLE mlcnn LOGIN PASSWORD 'mlcnn'" >&2
fi
if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = 'mlcnn'")" != 1 ]; then
  psql_admin -c "CREATE DATABASE mlcnn OWNER mlcnn" >&2
fi
port=$(pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" { print $3 }')
echo "Host=127.0.0.1;Port=$port;Username=mlcnn;Password=mlcnn;Database=mlcnn"
