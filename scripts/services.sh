#!/usr/bin/env bash
# Local services for tweetlambda, without Docker: MariaDB, the Tansu
# Kafka-compatible broker and the noida-db Elasticsearch-API server on
# 127.0.0.1. Installs what is missing, starts,
# stops and reports; every command is idempotent.
#
#   scripts/services.sh [--profile demo|test|bench] up|down|status|env
#
# Profiles keep the demo and the tests apart:
#   demo  MariaDB :3306, Tansu :9092, SQLite storage (survives a broker
#         restart), Elasticsearch API :9200
#   test  MariaDB :13306, Tansu :19092, SQLite storage (memory storage's
#         ListOffsets answers the start of the last batch, not the end),
#         Elasticsearch API :19200
#   bench MariaDB :23306, Tansu :29092, storage from TL_KAFKA_STORAGE
#         (memory), Elasticsearch API :29200
# Environment overrides: TL_HOME (state, logs, cached Tansu binary; default
# ~/.cache/tweetlambda), TL_MYSQL_PORT, TL_KAFKA_PORT, TL_KAFKA_STORAGE
# (memory|sqlite), TL_TANSU_BIN (use this broker binary), TL_ES_PORT,
# TL_NOIDA_BIN (use this Elasticsearch-API server binary), TL_MYSQL_USER and
# TL_MYSQL_PASSWORD (the account created for the pipeline).
# Logs: $TL_HOME/<profile>/logs/{mariadb,tansu,elasticsearch}.log
set -euo pipefail

profile=demo
if [[ "${1:-}" == "--profile" ]]; then
  profile="${2:?--profile needs demo or test}"
  shift 2
fi
cmd="${1:-status}"

TL_HOME="${TL_HOME:-$HOME/.cache/tweetlambda}"
case "$profile" in
  demo) def_mysql=3306 def_kafka=9092 def_storage=sqlite def_es=9200 ;;
  test) def_mysql=13306 def_kafka=19092 def_storage=sqlite def_es=19200 ;;
  bench) def_mysql=23306 def_kafka=29092 def_storage=memory def_es=29200 ;;
  *) echo "unknown profile '$profile' (demo, test or bench)" >&2; exit 2 ;;
esac
MYSQL_PORT="${TL_MYSQL_PORT:-$def_mysql}"
KAFKA_PORT="${TL_KAFKA_PORT:-$def_kafka}"
KAFKA_STORAGE="${TL_KAFKA_STORAGE:-$def_storage}"
ES_PORT="${TL_ES_PORT:-$def_es}"
MYSQL_USER="${TL_MYSQL_USER:-tweetlambda}"
MYSQL_PASSWORD="${TL_MYSQL_PASSWORD:-tweetlambda}"
TANSU_VERSION=0.6.0
NOIDA_VERSION=0.2.3

STATE="$TL_HOME/$profile"
LOGS="$STATE/logs"
RUN="$STATE/run"
MYSQL_DATA="$STATE/mariadb"
TANSU_DATA="$STATE/tansu"
SOCKET="$RUN/mariadb.sock"
TANSU_BIN="${TL_TANSU_BIN:-$TL_HOME/tansu/bin/tansu}"
ES_DATA="$STATE/elasticsearch"
NOIDA_BIN="${TL_NOIDA_BIN:-$TL_HOME/noida/bin/noida-db}"

log() { echo "[services:$profile] $*" >&2; }
elapsed_since() { local s=$((SECONDS - $1)); printf '%dm%02ds' $((s / 60)) $((s % 60)); }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pid_alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local secs=$1 what=$2; shift 2
  for ((i = 0; i < secs * 4; i++)); do
    if "$@"; then return 0; fi
    sleep 0.25
  done
  log "$what did not become healthy within ${secs}s; see $LOGS"
  return 1
}

install_mariadb() {
  # curl: the demo and the tests ask the serving layer's HTTP API with it;
  # chromium: the tests load the dashboard in it, headless.
  if command -v mariadbd >/dev/null && command -v mariadb >/dev/null \
    && command -v curl >/dev/null && command -v chromium >/dev/null; then return; fi
  log "installing mariadb-server, curl and chromium (Debian packages)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq mariadb-server mariadb-client curl chromium >/dev/null
}

install_tansu() {
  if [[ -x "$TANSU_BIN" ]]; then return; fi
  log "building Tansu $TANSU_VERSION once (about 15 minutes on 2 cores); cached at $TANSU_BIN"
  local started=$SECONDS
  mkdir -p "$TL_HOME/tansu"
  CARGO_TARGET_DIR="$TL_HOME/tansu-build" cargo install tansu --version "$TANSU_VERSION" \
    --locked --features dynostore,libsql --root "$TL_HOME/tansu" >"$TL_HOME/tansu-build.log" 2>&1 || {
    log "Tansu build failed; see $TL_HOME/tansu-build.log"; exit 1; }
  rm -rf "$TL_HOME/tansu-build"
  log "Tansu built in $(elapsed_since "$started")"
}

mysql_admin() { mariadb --no-defaults --socket="$SOCKET" -uroot "$@"; }

mysql_up() {
  install_mariadb
  mkdir -p "$LOGS" "$RUN" "$MYSQL_DATA"
  if pid_alive "$RUN/mariadb.pid" && mysql_admin -e 'SELECT 1' >/dev/null 2>&1; then
    log "MariaDB already running on 127.0.0.1:$MYSQL_PORT"; return
  fi
  if [[ ! -d "$MYSQL_DATA/mysql" ]]; then
    log "initialising MariaDB data directory $MYSQL_DATA"
    mariadb-install-db --no-defaults --user="$(id -un)" --datadir="$MYSQL_DATA" \
      --auth-root-authentication-method=socket --skip-test-db >"$LOGS/mariadb-install.log" 2>&1
  fi
  if port_open "$MYSQL_PORT"; then
    log "port $MYSQL_PORT is taken by another process; set TL_MYSQL_PORT"; exit 1
  fi
  log "starting MariaDB on 127.0.0.1:$MYSQL_PORT"
  # setsid -f: detached in its own session; the script returns at once and
  # holds no pipe of its caller open.
  setsid -f mariadbd --no-defaults --user="$(id -un)" --datadir="$MYSQL_DATA" \
    --socket="$SOCKET" --port="$MYSQL_PORT" --bind-address=127.0.0.1 \
    --pid-file="$RUN/mariadb.pid" --log-error="$LOGS/mariadb.log" \
    --skip-name-resolve --innodb-buffer-pool-size=1G --innodb-flush-log-at-trx-commit=2 \
    --max-connections=500 --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
    </dev/null >>"$LOGS/mariadb.log" 2>&1
  wait_for 60 MariaDB mysql_admin -e 'SELECT 1' >/dev/null 2>&1
  mysql_admin <<SQL
CREATE USER IF NOT EXISTS '$MYSQL_USER'@'127.0.0.1' IDENTIFIED BY '$MYSQL_PASSWORD';
CREATE USER IF NOT EXISTS '$MYSQL_USER'@'localhost' IDENTIFIED BY '$MYSQL_PASSWORD';
GRANT ALL PRIVILEGES ON *.* TO '$MYSQL_USER'@'127.0.0.1';
GRANT ALL PRIVILEGES ON *.* TO '$MYSQL_USER'@'localhost';
FLUSH PRIVILEGES;
SQL
}

tansu_up() {
  install_tansu
  mkdir -p "$LOGS" "$RUN" "$TANSU_DATA"
  if pid_alive "$RUN/tansu.pid" && port_open "$KAFKA_PORT"; then
    log "Tansu already running on 127.0.0.1:$KAFKA_PORT"; return
  fi
  if port_open "$KAFKA_PORT"; then
    log "port $KAFKA_PORT is taken by another process; set TL_KAFKA_PORT"; exit 1
  fi
  # Tansu's maintenance (retention and compaction) runs at start and then
  # every 10 minutes by default. Its compaction (0.6.0) is one SQL pass over
  # every compacted topic of the broker, with no index on the key, and it
  # holds the broker's single storage queue while it runs: the broker
  # stopped answering during test runs with a compacted view. Here it runs
  # once at start and then every 30 days, that is not during a run, so
  # compacted topics (speed.view) are kept whole, as any topic is (README,
  # "Local services").
  local engine maintenance="maintenance_interval=30days"
  case "$KAFKA_STORAGE" in
    memory) engine="memory://tansu/?$maintenance" ;;
    sqlite) engine="sqlite://tansu.db?$maintenance" ;; # relative to the working directory
    *) log "TL_KAFKA_STORAGE must be memory or sqlite"; exit 2 ;;
  esac
  log "starting Tansu on 127.0.0.1:$KAFKA_PORT ($KAFKA_STORAGE storage)"
  # The broker writes its own pid (setsid forks, so $! would not be it).
  (cd "$TANSU_DATA" && exec setsid -f bash -c 'echo $$ >"$0"; exec "$@"' "$RUN/tansu.pid" \
    "$TANSU_BIN" broker \
    --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
    --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
    --storage-engine "$engine") </dev/null >>"$LOGS/tansu.log" 2>&1
  wait_for 60 Tansu port_open "$KAFKA_PORT"
}

install_noida() {
  if [[ -x "$NOIDA_BIN" ]]; then return; fi
  # Its PyPI wheel needs glibc 2.39, newer than Debian 12's: built from
  # crates.io instead, with only the Elasticsearch API.
  log "building noida-db $NOIDA_VERSION once (about 3 minutes on 2 cores); cached at $NOIDA_BIN"
  local started=$SECONDS
  mkdir -p "$TL_HOME/noida"
  CARGO_TARGET_DIR="$TL_HOME/noida-build" cargo install noida-db --version "$NOIDA_VERSION" \
    --locked --no-default-features --features elasticsearch --root "$TL_HOME/noida" \
    >"$TL_HOME/noida-build.log" 2>&1 || {
    log "noida-db build failed; see $TL_HOME/noida-build.log"; exit 1; }
  rm -rf "$TL_HOME/noida-build"
  log "noida-db built in $(elapsed_since "$started")"
}

es_healthy() { curl -sf --max-time 2 "http://127.0.0.1:$ES_PORT/" >/dev/null 2>&1; }

es_up() {
  install_noida
  mkdir -p "$LOGS" "$RUN" "$ES_DATA"
  if pid_alive "$RUN/elasticsearch.pid" && es_healthy; then
    log "Elasticsearch API (noida-db) already running on 127.0.0.1:$ES_PORT"; return
  fi
  if port_open "$ES_PORT"; then
    log "port $ES_PORT is taken by another process; set TL_ES_PORT"; exit 1
  fi
  log "starting the Elasticsearch API (noida-db) on 127.0.0.1:$ES_PORT"
  setsid -f bash -c 'echo $$ >"$0"; exec "$@"' "$RUN/elasticsearch.pid" \
    "$NOIDA_BIN" start --only elasticsearch --elasticsearch-port "$ES_PORT" \
    --data-dir "$ES_DATA" </dev/null >>"$LOGS/elasticsearch.log" 2>&1
  wait_for 60 "Elasticsearch API" es_healthy
}

stop_pid() { # stop_pid NAME PIDFILE
  if pid_alive "$2"; then
    local pid; pid=$(cat "$2")
    log "stopping $1 (pid $pid)"
    kill "$pid" 2>/dev/null || true
    for ((i = 0; i < 120; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$2"
}

status() {
  local ok=0
  if pid_alive "$RUN/mariadb.pid" && port_open "$MYSQL_PORT"; then
    echo "mariadb  up    127.0.0.1:$MYSQL_PORT  pid $(cat "$RUN/mariadb.pid")"
  else echo "mariadb  down  127.0.0.1:$MYSQL_PORT"; ok=1; fi
  if pid_alive "$RUN/tansu.pid" && port_open "$KAFKA_PORT"; then
    echo "tansu    up    127.0.0.1:$KAFKA_PORT  pid $(cat "$RUN/tansu.pid") ($KAFKA_STORAGE)"
  else echo "tansu    down  127.0.0.1:$KAFKA_PORT"; ok=1; fi
  if pid_alive "$RUN/elasticsearch.pid" && es_healthy; then
    echo "es       up    127.0.0.1:$ES_PORT  pid $(cat "$RUN/elasticsearch.pid") (noida-db)"
  else echo "es       down  127.0.0.1:$ES_PORT"; ok=1; fi
  echo "logs     $LOGS"
  return $ok
}

case "$cmd" in
  up) mysql_up; tansu_up; es_up; status ;;
  down) stop_pid "Elasticsearch API" "$RUN/elasticsearch.pid"; stop_pid Tansu "$RUN/tansu.pid"
    stop_pid MariaDB "$RUN/mariadb.pid" ;;
  status) status ;;
  env) # the settings a client needs, as shell assignments
    echo "TWEETLAMBDA_MYSQL_URL=mysql://$MYSQL_USER:$MYSQL_PASSWORD@127.0.0.1:$MYSQL_PORT"
    echo "TWEETLAMBDA_BROKERS=127.0.0.1:$KAFKA_PORT"
    echo "TWEETLAMBDA_ES_URL=http://127.0.0.1:$ES_PORT"
    echo "TWEETLAMBDA_ES_SERVER_BIN=$NOIDA_BIN" ;;
  *) echo "usage: $0 [--profile demo|test|bench] up|down|status|env" >&2; exit 2 ;;
esac
