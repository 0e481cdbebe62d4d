# Sourced by .ci/run: a throwaway PostgreSQL on loopback for the ledger tests.
# Uses the machine's PostgreSQL server, installing it from Debian's packages when it is missing,
# and exports LANEWAY_TEST_POSTGRES_URL; the cluster is removed when CI ends.

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

start_ci_postgres() {
  local bin dir port
  bin=$(pg_bin)
  if [ -z "$bin" ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    bin=$(pg_bin)
  fi
  dir=$(mktemp -d /tmp/laneway-ci-pg.XXXXXX)
  chown postgres "$dir"
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  su postgres -c "$bin/initdb -D $dir/data -A trust -U postgres" >/dev/null
  su postgres -c "$bin/pg_ctl -D $dir/data -l $dir/log -w -o '-h 127.0.0.1 -p $port -k $dir' start" >/dev/null
  su postgres -c "$bin/createdb -h 127.0.0.1 -p $port laneway_test"
  export LANEWAY_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:$port/laneway_test"
  CI_PG_STOP="su postgres -c '$bin/pg_ctl -D $dir/data -m fast stop' >/dev/null; rm -rf $dir"
  trap 'eval "$CI_PG_STOP"' EXIT
  echo "ci: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port for the ledger tests"
}
