#!/usr/bin/env bash
# Flowgate as it runs in production, on one machine: three instances behind HAProxy (health-checked
# through /readyz), a 3-master Redis Cluster, and PostgreSQL.
#
#   npm run cluster start        # prints the URL; first start also prints the dashboard sign-in
#   npm run cluster status
#   npm run cluster roll         # rolling restart, one instance at a time (what an upgrade does)
#   npm run cluster restart 2    # restart instance 2
#   npm run cluster kill 2       # SIGKILL instance 2 (a crash); `start` brings it back
#   npm run cluster stop         # stops everything; `stop --purge` also drops the database
#
# Needs redis-server, redis-cli, haproxy and curl on the PATH (Debian: redis-server, haproxy, curl)
# and a PostgreSQL where it may create a database (DATABASE_ADMIN_URL, default the one `npm test`
# uses). Everything else lives under STATE_DIR. Settings (environment, defaults in brackets):
#   LB_PORT [8080]  INSTANCE_PORTS [3001,3002,3003]  METRICS_PORTS [each instance port + 6000]
#   REDIS_PORTS [7001,7002,7003]
#   REDIS_BUS_PORTS [each Redis port + 10000]  DB_NAME [flowgate_local_cluster]
#   STATE_DIR [deploy/local-cluster/.run]  DATABASE_ADMIN_URL [postgres://postgres@127.0.0.1:5432/postgres]
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STATE_DIR=${STATE_DIR:-$ROOT/deploy/local-cluster/.run}
LB_PORT=${LB_PORT:-8080}
IFS=, read -r -a INSTANCE_PORTS <<<"${INSTANCE_PORTS:-3001,3002,3003}"
IFS=, read -r -a REDIS_PORTS <<<"${REDIS_PORTS:-7001,7002,7003}"
# Production serves /metrics on a port of its own; instances sharing a machine need one each.
if [ -n "${METRICS_PORTS:-}" ]; then IFS=, read -r -a METRICS_PORTS_ <<<"$METRICS_PORTS"; else METRICS_PORTS_=(); for p in "${INSTANCE_PORTS[@]}"; do METRICS_PORTS_+=($((p + 6000))); done; fi
if [ -n "${REDIS_BUS_PORTS:-}" ]; then IFS=, read -r -a REDIS_BUS <<<"$REDIS_BUS_PORTS"; else REDIS_BUS=(); for p in "${REDIS_PORTS[@]}"; do REDIS_BUS+=($((p + 10000))); done; fi
DB_NAME=${DB_NAME:-flowgate_local_cluster}
DATABASE_ADMIN_URL=${DATABASE_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
DATABASE_URL=${DATABASE_ADMIN_URL%/*}/$DB_NAME
ISSUER=${ISSUER:-http://127.0.0.1:$LB_PORT}
# The project's pinned Node (24) when installed; `npm run cluster` puts it first on the PATH anyway.
NODE=${NODE:-$([ -x "$ROOT/node_modules/.bin/node" ] && echo "$ROOT/node_modules/.bin/node" || echo node)}
# Seconds an instance gets to finish in-flight requests after SIGTERM before it is killed.
STOP_TIMEOUT=${STOP_TIMEOUT:-40}

log() { printf '%s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

need() { command -v "$1" >/dev/null 2>&1 || die "$1 is not installed (Debian: apt-get install $2)"; }

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_until() { # wait_until <seconds> <description> <command...>
  local deadline=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || die "$what did not happen within the time allowed"
    sleep 0.2
  done
}

cluster_nodes() { local IFS=,; local n=(); for p in "${REDIS_PORTS[@]}"; do n+=("127.0.0.1:$p"); done; echo "${n[*]}"; }

# ---------------------------------------------------------------------------------------------
# PostgreSQL: one database on the given server; migrations run once, before any instance starts.

ensure_database() {
  need psql postgresql-client
  if ! psql "$DATABASE_ADMIN_URL" -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'" | grep -q 1; then
    psql "$DATABASE_ADMIN_URL" -qc "CREATE DATABASE \"$DB_NAME\"" >/dev/null
    log "created database $DB_NAME"
  fi
}

# ---------------------------------------------------------------------------------------------
# Redis Cluster: three masters, no replicas (a replica per master is one more node each).

redis_up() { [ "$(redis-cli -p "$1" ping 2>/dev/null)" = PONG ]; }
cluster_ok() { redis-cli -p "${REDIS_PORTS[0]}" cluster info 2>/dev/null | grep -q 'cluster_state:ok'; }

start_redis() {
  need redis-server redis-server
  local i p dir
  for i in "${!REDIS_PORTS[@]}"; do
    p=${REDIS_PORTS[$i]}
    dir=$STATE_DIR/redis-$p
    mkdir -p "$dir"
    if redis_up "$p"; then continue; fi
    redis-server --port "$p" --bind 127.0.0.1 --dir "$dir" --daemonize yes --pidfile "$dir/redis.pid" \
      --logfile "$dir/redis.log" --cluster-enabled yes --cluster-config-file nodes.conf \
      --cluster-port "${REDIS_BUS[$i]}" --cluster-node-timeout 3000 \
      --save '' --appendonly no --maxmemory 256mb --maxmemory-policy noeviction >/dev/null
    wait_until 10 "redis-server on $p to start" redis_up "$p"
  done
  if ! cluster_ok; then
    if ! redis-cli -p "${REDIS_PORTS[0]}" cluster info | grep -q "cluster_known_nodes:${#REDIS_PORTS[@]}"; then
      local args=(); for p in "${REDIS_PORTS[@]}"; do args+=("127.0.0.1:$p"); done
      redis-cli --cluster create "${args[@]}" --cluster-replicas 0 --cluster-yes >"$STATE_DIR/redis-cluster-create.log"
    fi
    wait_until 30 "the Redis Cluster to be ok" cluster_ok
  fi
  log "Redis Cluster ok on $(cluster_nodes)"
}

stop_redis() {
  local p
  for p in "${REDIS_PORTS[@]}"; do
    redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true
  done
}

# ---------------------------------------------------------------------------------------------
# Flowgate instances: same database, Redis Cluster, secrets and signing keys; the issuer is the
# balancer's URL, so tokens issued through any instance carry the same `iss`.

secrets() {
  local f=$STATE_DIR/secrets.env
  if [ ! -f "$f" ]; then
    umask 077
    printf 'COOKIE_SECRETS=%s\nAPI_KEY_PEPPER=%s\n' "$(head -c 48 /dev/urandom | base64 | tr -d '\n/+=')" "$(head -c 32 /dev/urandom | base64 | tr -d '\n/+=')" >"$f"
  fi
  cat "$f"
}

instance_vars() { # instance_vars <n>: the environment of instance n, as NAME=value words
  local n=$1
  echo $(secrets) \
    NODE_ENV=production PORT="${INSTANCE_PORTS[$((n - 1))]}" METRICS_PORT="${METRICS_PORTS_[$((n - 1))]}" METRICS_HOST=127.0.0.1 HOST=127.0.0.1 ISSUER="$ISSUER" TRUST_PROXY=true \
    DATABASE_URL="$DATABASE_URL" REDIS_URL= WORKERS=1 REDIS_CLUSTER_NODES="$(cluster_nodes)" REDIS_PREFIX=flowgate: \
    KEYS_DIR="$STATE_DIR/keys" DATA_DIR="$STATE_DIR/data" LOG_LEVEL="${LOG_LEVEL:-info}" \
    SEED_DEV_DATA="$([ "$n" = 1 ] && echo true || echo false)"
}

ready() { curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:${INSTANCE_PORTS[$(($1 - 1))]}/readyz"; }

start_instance() { # start_instance <n>
  local n=$1 pidf=$STATE_DIR/instance-$1.pid
  if alive "$pidf"; then return; fi
  local vars
  read -r -a vars <<<"$(instance_vars "$n")"
  # A plain command in the background (no function, no subshell left waiting on it), detached from
  # this script's terminal and pipes, so that `start` returns while the instance keeps running.
  cd "$ROOT"
  env "${vars[@]}" setsid "$NODE" --import tsx src/main.ts </dev/null >>"$STATE_DIR/instance-$n.log" 2>&1 &
  echo $! >"$pidf"
  disown $! 2>/dev/null || true
  cd - >/dev/null
  wait_until 60 "instance $n to be ready (see $STATE_DIR/instance-$n.log)" ready "$n"
  log "instance $n ready on 127.0.0.1:${INSTANCE_PORTS[$((n - 1))]} (pid $(cat "$pidf"))"
}

stop_instance() { # stop_instance <n> [signal]
  local n=$1 signal=${2:-TERM} pidf=$STATE_DIR/instance-$1.pid pid
  alive "$pidf" || { rm -f "$pidf"; return 0; }
  pid=$(cat "$pidf")
  kill "-$signal" "$pid"
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
    sleep 0.1
  done
  rm -f "$pidf"
  log "instance $n stopped ($signal)"
}

# ---------------------------------------------------------------------------------------------
# HAProxy: round robin, /readyz checks every second (2 failures out, 1 success in), and a retry on
# another instance for a request that could not be sent or got no response at all (an instance
# that died or closed the connection under it).

haproxy_config() {
  cat <<EOF
global
  maxconn 4096

defaults
  mode http
  option forwardfor
  timeout connect 1s
  timeout client 30s
  timeout server 30s
  timeout http-keep-alive 10s
  timeout check 2s
  # A request is retried (up to 3 times, on another instance: redispatch) only when it was never
  # answered: the connection failed, or closed with no response. Such a request may have run on the
  # instance that died (a token issued twice); an answered request is never retried.
  retries 3
  option redispatch 1
  retry-on conn-failure empty-response

frontend flowgate
  bind 127.0.0.1:$LB_PORT
  default_backend instances

backend instances
  balance roundrobin
  option httpchk
  http-check send meth GET uri /readyz
  http-check expect status 200
  default-server check inter 1s fall 2 rise 1
EOF
  local i
  for i in "${!INSTANCE_PORTS[@]}"; do echo "  server flowgate-$((i + 1)) 127.0.0.1:${INSTANCE_PORTS[$i]}"; done
}

start_haproxy() {
  need haproxy haproxy
  local pidf=$STATE_DIR/haproxy.pid
  if alive "$pidf"; then return; fi
  haproxy_config >"$STATE_DIR/haproxy.cfg"
  haproxy -c -q -f "$STATE_DIR/haproxy.cfg"
  haproxy -f "$STATE_DIR/haproxy.cfg" -D -p "$pidf" 2>>"$STATE_DIR/haproxy.log"
  wait_until 10 "HAProxy to answer" curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$LB_PORT/healthz"
  log "HAProxy on http://127.0.0.1:$LB_PORT"
}

stop_haproxy() {
  local pidf=$STATE_DIR/haproxy.pid
  if alive "$pidf"; then kill "$(cat "$pidf")"; fi
  rm -f "$pidf"
}

# ---------------------------------------------------------------------------------------------

cmd_start() {
  need curl curl
  mkdir -p "$STATE_DIR/keys" "$STATE_DIR/data"
  ensure_database
  start_redis
  # Migrations and signing keys once, before any instance: instances then never race on them.
  local vars
  read -r -a vars <<<"$(instance_vars 1)"
  (cd "$ROOT" && env "${vars[@]}" "$NODE" bin/flowgate.js migrate >/dev/null)
  [ -f "$STATE_DIR/keys/jwks.private.json" ] || (cd "$ROOT" && env "${vars[@]}" "$NODE" bin/flowgate.js keys generate >/dev/null)
  local n
  start_instance 1
  local starting=()
  for n in $(seq 2 "${#INSTANCE_PORTS[@]}"); do start_instance "$n" & starting+=($!); done
  wait "${starting[@]}"
  for n in $(seq 1 "${#INSTANCE_PORTS[@]}"); do alive "$STATE_DIR/instance-$n.pid" || die "instance $n did not start"; done
  start_haproxy
  if grep -q 'This first start created' "$STATE_DIR/instance-1.log" 2>/dev/null && [ ! -f "$STATE_DIR/.announced" ]; then
    sed -n '/This first start created/,/Discovery:/p' "$STATE_DIR/instance-1.log" >&2
    touch "$STATE_DIR/.announced"
  fi
  echo "http://127.0.0.1:$LB_PORT"
}

cmd_stop() {
  stop_haproxy
  local n stopping=()
  for n in $(seq 1 "${#INSTANCE_PORTS[@]}"); do stop_instance "$n" & stopping+=($!); done
  wait "${stopping[@]}"
  stop_redis
  if [ "${1:-}" = --purge ]; then
    psql "$DATABASE_ADMIN_URL" -qc "DROP DATABASE IF EXISTS \"$DB_NAME\" WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$STATE_DIR"
    log "dropped database $DB_NAME and removed $STATE_DIR"
  fi
}

cmd_status() {
  local n state=0
  for n in $(seq 1 "${#INSTANCE_PORTS[@]}"); do
    if ready "$n"; then echo "instance $n  ready      127.0.0.1:${INSTANCE_PORTS[$((n - 1))]}"; else echo "instance $n  not ready  127.0.0.1:${INSTANCE_PORTS[$((n - 1))]}"; state=1; fi
  done
  if cluster_ok; then echo "redis       cluster ok $(cluster_nodes)"; else echo "redis       cluster not ok"; state=1; fi
  if alive "$STATE_DIR/haproxy.pid"; then echo "haproxy     up         http://127.0.0.1:$LB_PORT"; else echo "haproxy     down"; state=1; fi
  return $state
}

cmd_restart() { # one instance: SIGTERM, wait for its exit, start, wait until ready
  stop_instance "$1"
  start_instance "$1"
}

cmd_roll() { # every instance in turn; the balancer keeps serving through the others
  local n
  for n in $(seq 1 "${#INSTANCE_PORTS[@]}"); do
    cmd_restart "$n"
    # Let the balancer's check see it ready again before taking the next one out.
    sleep 2
  done
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop "${2:-}" ;;
  status) cmd_status ;;
  restart) [ -n "${2:-}" ] || die "usage: cluster.sh restart <instance number>"; cmd_restart "$2" ;;
  roll) cmd_roll ;;
  kill) [ -n "${2:-}" ] || die "usage: cluster.sh kill <instance number>"; stop_instance "$2" KILL ;;
  start-instance) start_instance "$2" ;;
  *) die "usage: cluster.sh start | stop [--purge] | status | roll | restart <n> | kill <n> | start-instance <n>" ;;
esac
