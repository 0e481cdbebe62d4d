#!/bin/sh
# Creates and migrates Temporal's two PostgreSQL databases (runs in temporalio/admin-tools).
# Runs again on every `docker compose up`: `setup-schema -v 0.0` only follows a successful
# `create` (re-running it would reset the recorded version), while `update-schema` only applies
# the versions a database lacks.
set -eu
: "${POSTGRES_SEEDS:?}" "${POSTGRES_USER:?}" "${SQL_PASSWORD:?}"
SCHEMA_DIR=/etc/temporal/schema/postgresql/v12

sql_tool() {
  temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "${DB_PORT:-5432}" \
    -u "$POSTGRES_USER" "$@"
}

prepare() { # database, versioned schema directory
  if sql_tool --db "$1" create; then
    sql_tool --db "$1" setup-schema -v 0.0
  else
    echo "database $1 exists; updating its schema"
  fi
  sql_tool --db "$1" update-schema -d "$2"
}

prepare temporal "$SCHEMA_DIR/temporal/versioned"
prepare temporal_visibility "$SCHEMA_DIR/visibility/versioned"
echo "Temporal schema ready"
