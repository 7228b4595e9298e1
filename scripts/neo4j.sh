#!/usr/bin/env bash
# Installs Neo4j Community (LTS) from Maven Central, and starts/stops throwaway servers on loopback.
#
#   scripts/neo4j.sh install          resolve the jars into .neo4j/<version>/lib (cached)
#   scripts/neo4j.sh start [DIR] [--browser]
#                                     start a server with its state in DIR, wait for Bolt, print env;
#                                     --browser (or NEO4J_BROWSER=1) also serves Neo4j Browser over
#                                     HTTP on loopback and prints NEO4J_BROWSER_URL
#   scripts/neo4j.sh stop [DIR]       stop the server started in DIR
#
# A started server binds 127.0.0.1 on a free port, has auth on with a generated password, a heap of
# at most 1 GiB and a page cache of 512 MiB. DIR/env holds NEO4J_URI, NEO4J_USER and NEO4J_PASSWORD.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
version="${NEO4J_VERSION:-5.26.30}"
browser_version="${NEO4J_BROWSER_VERSION:-5.24.0}"
cache="${NEO4J_CACHE:-$root/.neo4j}"
home="$cache/$version"
python="${PYTHON:-python3}"

install() {
  if [ -f "$home/.complete" ]; then
    return 0
  fi
  echo "neo4j: resolving org.neo4j:neo4j:$version and org.neo4j.app:neo4j-server:$version from Maven Central" >&2
  rm -rf "$home"
  mkdir -p "$home/lib"
  mvn -q -B -f "$here/neo4j-pom.xml" -Dneo4j.version="$version" \
    dependency:copy-dependencies -DoutputDirectory="$home/lib" -DincludeScope=runtime >&2
  touch "$home/.complete"
}

install_browser() {  # Neo4j Browser: static files in one jar (org.neo4j.client:neo4j-browser)
  install
  [ -f "$home/lib/neo4j-browser-$browser_version.jar" ] && return 0
  echo "neo4j: resolving org.neo4j.client:neo4j-browser:$browser_version from Maven Central" >&2
  mvn -q -B dependency:copy -Dartifact="org.neo4j.client:neo4j-browser:$browser_version" \
    -DoutputDirectory="$home/lib" >&2
}

free_port() {
  "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

write_conf() {  # $1 = instance dir, $2 = bolt port, $3 = http port (empty: no HTTP)
  local http_enabled=false
  [ -n "${3:-}" ] && http_enabled=true
  cat > "$1/conf/neo4j.conf" <<CONF
server.directories.data=$1/data
server.directories.logs=$1/logs
server.directories.run=$1/run
server.directories.plugins=$1/plugins
server.directories.import=$1/import
server.directories.lib=$home/lib
server.default_listen_address=127.0.0.1
server.default_advertised_address=127.0.0.1
server.bolt.listen_address=127.0.0.1:$2
server.bolt.advertised_address=127.0.0.1:$2
server.http.enabled=$http_enabled
server.http.listen_address=127.0.0.1:${3:-7474}
server.http.advertised_address=127.0.0.1:${3:-7474}
server.https.enabled=false
dbms.security.auth_enabled=true
server.memory.heap.initial_size=512m
server.memory.heap.max_size=1g
server.memory.pagecache.size=512m
db.tx_log.rotation.retention_policy=1 files
db.tx_log.rotation.size=1M
db.checkpoint.interval.time=10s
dbms.usage_report.enabled=false
server.jvm.additional=-XX:+UseG1GC
server.jvm.additional=-XX:-OmitStackTraceInFastThrow
server.jvm.additional=-XX:+UnlockExperimentalVMOptions
server.jvm.additional=-XX:+TrustFinalNonStaticFields
server.jvm.additional=-XX:+DisableExplicitGC
server.jvm.additional=-Djdk.nio.maxCachedBufferSize=1024
server.jvm.additional=-Dio.netty.tryReflectionSetAccessible=true
server.jvm.additional=-Djdk.tls.ephemeralDHKeySize=2048
server.jvm.additional=-Djdk.tls.rejectClientInitiatedRenegotiation=true
server.jvm.additional=--add-opens=java.base/java.nio=ALL-UNNAMED
server.jvm.additional=--add-opens=java.base/java.io=ALL-UNNAMED
server.jvm.additional=--add-opens=java.base/sun.nio.ch=ALL-UNNAMED
server.jvm.additional=-Dlog4j2.disable.jmx=true
CONF
}

start() {
  local dir="${1:-$cache/instances/dev}" browser="${NEO4J_BROWSER:-}"
  [ "${2:-}" = "--browser" ] && browser=1
  if [ -n "$browser" ]; then install_browser; else install; fi
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  if [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
    cat "$dir/env"
    return 0
  fi
  mkdir -p "$dir"/{conf,data,logs,run,plugins,import}
  local port password http_port=""
  port="$(free_port)"
  [ -n "$browser" ] && http_port="$(free_port)"
  if [ -f "$dir/password" ]; then
    password="$(cat "$dir/password")"
  else
    # hex: a password starting with '-' would be read by neo4j-admin as an option
    password="$("$python" -c 'import secrets; print(secrets.token_hex(16))')"
    (umask 077; echo "$password" > "$dir/password")
  fi
  write_conf "$dir" "$port" "$http_port"
  export NEO4J_HOME="$home" NEO4J_CONF="$dir/conf"
  if [ ! -d "$dir/data/dbms" ]; then
    java -cp "$home/lib/*" org.neo4j.server.startup.Neo4jAdminCommand \
      dbms set-initial-password "$password" > "$dir/logs/admin.log" 2>&1
  fi
  # `Neo4jCommand console --dry-run` prints the java command line that the tarball's launcher runs;
  # run exactly that, so the JVM flags (heap, --add-opens) come from neo4j.conf as in a tarball install.
  local cmd
  cmd="$(java -cp "$home/lib/*" org.neo4j.server.startup.Neo4jCommand console --dry-run | tail -n 1)"
  # shellcheck disable=SC2086
  nohup $cmd > "$dir/logs/console.log" 2>&1 < /dev/null &
  echo $! > "$dir/pid"
  local started=$SECONDS
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && grep -q "Started." "$dir/logs/console.log"; do
    if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
      echo "neo4j: server exited during start; last log lines:" >&2
      tail -n 30 "$dir/logs/console.log" >&2
      exit 1
    fi
    if (( SECONDS - started > 180 )); then
      echo "neo4j: Bolt did not answer on port $port within 180 s" >&2
      stop "$dir"
      exit 1
    fi
    sleep 0.5
  done
  cat > "$dir/env" <<ENV
export NEO4J_URI=bolt://127.0.0.1:$port
export NEO4J_USER=neo4j
export NEO4J_PASSWORD=$password
ENV
  [ -n "$http_port" ] && echo "export NEO4J_BROWSER_URL=http://127.0.0.1:$http_port/browser/" >> "$dir/env"
  echo "neo4j: $version up on bolt://127.0.0.1:$port after $((SECONDS - started)) s (state in $dir)" >&2
  cat "$dir/env"
}

stop() {
  local dir="${1:-$cache/instances/dev}"
  [ -f "$dir/pid" ] || return 0
  local pid
  pid="$(cat "$dir/pid")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/pid"
}

case "${1:-}" in
  install) install ;;
  install-browser) install_browser ;;
  start) start "${2:-}" "${3:-}" ;;
  stop) stop "${2:-}" ;;
  *) echo "usage: $0 install | install-browser | start [DIR] [--browser] | stop [DIR]" >&2; exit 2 ;;
esac
