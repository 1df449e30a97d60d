#!/usr/bin/env bash
# demo.sh: see prepull work, as root, on a fresh Debian machine. It installs
# only what it runs and is missing (docker.io, docker-registry,
# apache2-utils; Go when there is none), builds prepull into bin/prepull
# (kept), starts a throwaway Docker Engine and a registry with a login,
# pushes a small image, makes a sample pak naming it, and runs prepull twice
# (pulled, then present) and prepull inspect --json. Everything it starts or
# writes besides bin/prepull lives under one /tmp directory and goes away on
# exit; the machine's own Docker Engine, logins and tools stay as they were.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

readonly REPO=demo/adapter
readonly REG_USER=demo
DOCKER=/usr/bin/docker
work=""
prepull=""
dockerd_pid=""
registry_pid=""

# cleanup stops what the demo started and removes its directory.
cleanup() {
  stop_pid "$registry_pid" 5
  stop_pid "$dockerd_pid" 30
  if [[ -n "$work" ]]; then
    # A dockerd that had to be killed leaves its data root mounted.
    if grep -q " $work/" /proc/self/mountinfo 2>/dev/null; then
      umount -l "$work/docker/data" 2>/dev/null || true
    fi
    rm -rf "$work"
  fi
}

# stop_pid sends SIGTERM to a pid, waits up to $2 seconds, then SIGKILL.
stop_pid() {
  local pid="$1" wait_s="$2" i
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < wait_s * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

# wait_for runs a check until it succeeds, up to $1 seconds, failing early
# when process $2 is gone; $3 names it and its log for the error message.
wait_for() {
  local secs="$1" pid="$2" log="$3" i
  shift 3
  for ((i = 0; i < secs * 10; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  tail -n 20 "$log" >&2
  die "no answer from $* (log above: $log)"
}

# http_status prints the HTTP status code of GET $2 on 127.0.0.1:$1.
http_status() {
  local port="$1" path="$2" line
  exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
  printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$path" >&3
  read -r _ line _ <&3 || true
  exec 3>&-
  printf '%s\n' "$line"
}

# registry_answers tells whether the registry answers GET /v2/ (401: login).
registry_answers() {
  [[ "$(http_status "$1" /v2/ 2>/dev/null)" == 401 ]]
}

# free_port prints a port of 127.0.0.1 that nothing listens on.
free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      printf '%s\n' "$port"
      return
    fi
  done
}

start_dockerd() {
  local dir="$work/docker"
  mkdir -p "$dir/data" "$dir/exec" "$dir/cli"
  echo '{}' >"$dir/daemon.json"
  setsid dockerd --config-file "$dir/daemon.json" \
    --data-root "$dir/data" --exec-root "$dir/exec" \
    --pidfile "$dir/dockerd.pid" -H "unix://$dir/docker.sock" \
    --storage-driver=vfs --iptables=false --ip6tables=false --bridge=none \
    >"$dir/dockerd.log" 2>&1 &
  dockerd_pid=$!
  wait_for 60 "$dockerd_pid" "$dir/dockerd.log" docker_cli version --format '{{.Server.Version}}'
}

# docker_cli runs the docker CLI against the demo's engine with a config of
# its own. Its PATH is an empty folder: where docker-credential-pass is
# installed, the CLI would otherwise keep its login in pass, not config.json.
docker_cli() {
  mkdir -p "$work/docker/no-helpers"
  PATH="$work/docker/no-helpers" DOCKER_HOST="unix://$work/docker/docker.sock" DOCKER_CONFIG="$work/docker/cli" "$DOCKER" "$@"
}

start_registry() {
  local dir="$work/registry"
  mkdir -p "$dir/storage"
  port="$(free_port)"
  # The password goes to htpasswd and later to prepull through files and
  # standard input, never through a command line.
  (umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$work/registry-password")
  htpasswd -iBn "$REG_USER" <"$work/registry-password" | sed '/^$/d' >"$dir/htpasswd"
  cat >"$dir/config.yml" <<EOF
version: 0.1
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
auth:
  htpasswd:
    realm: basic-realm
    path: $dir/htpasswd
EOF
  setsid docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
  registry_pid=$!
  wait_for 30 "$registry_pid" "$dir/registry.log" registry_answers "$port"
  echo "registry 127.0.0.1:$port (user $REG_USER)"
}

# push_image imports a one-file image, pushes it, removes the local copy so
# that prepull really pulls, and sets digest.
push_image() {
  local ref="127.0.0.1:$port/$REPO:1" out
  mkdir -p "$work/image"
  head -c 65536 /dev/urandom >"$work/image/payload"
  tar -C "$work/image" -c . | docker_cli import - "$ref" >/dev/null
  docker_cli login --username "$REG_USER" --password-stdin "127.0.0.1:$port" \
    <"$work/registry-password" >/dev/null 2>&1
  out="$(docker_cli push "$ref")"
  digest="$(sed -n 's/.*digest: \(sha256:[0-9a-f]\{64\}\).*/\1/p' <<<"$out")"
  [[ -n "$digest" ]] || die "push printed no digest: $out"
  docker_cli logout "127.0.0.1:$port" >/dev/null
  docker_cli image rm "$ref" >/dev/null
  echo "pushed 127.0.0.1:$port/$REPO@$digest"
}

make_pak() {
  go run ./scripts/mkpak -o "$work/sample.pak" -kind DemoAdapter -version 1.0.0 \
    -registry "127.0.0.1:$port" -repository "/$REPO" -digest "$digest"
  echo "wrote $work/sample.pak"
}

write_config() {
  cat >"$work/config.yaml" <<EOF
docker_host: unix://$work/docker/docker.sock
registries:
  - host: 127.0.0.1:$port
    username: $REG_USER
    password_file: $work/registry-password
EOF
  cat "$work/config.yaml"
}

# run_prepull runs prepull on the sample pak and checks that its output
# says $1.
run_prepull() {
  local want="$1" out
  out="$("$prepull" --config "$work/config.yaml" "$work/sample.pak")"
  printf '%s\n' "$out"
  grep -qi "$want" <<<"$out" || die "expected prepull to say \"$want\""
}

main() {
  [[ "$(id -u)" -eq 0 ]] || die "run as root: the demo starts its own dockerd"
  section "parts (Debian packages)"
  install_missing "${DEMO_PARTS[@]}"
  [[ -x "$DOCKER" ]] || DOCKER="$(command -v docker)"

  work="$(mktemp -d /tmp/pp-demo-XXXXXX)"
  trap cleanup EXIT
  trap 'exit 130' INT TERM

  section "build prepull"
  mkdir -p bin
  go build -o bin/prepull ./cmd/prepull
  prepull="$PWD/bin/prepull"
  echo "built $prepull (kept after the demo)"

  section "start a throwaway Docker Engine"
  start_dockerd
  echo "dockerd on unix://$work/docker/docker.sock"

  section "start a registry that requires a login"
  start_registry

  section "push a small image"
  push_image

  section "make a sample pak naming that image by digest"
  make_pak

  section "config for prepull (the password stays in a 0600 file)"
  write_config

  section "prepull sample.pak: the image is pulled"
  run_prepull pulled

  section "prepull sample.pak again: the image is present"
  run_prepull present

  section "prepull inspect --json sample.pak"
  "$prepull" inspect --json "$work/sample.pak"

  section "done: everything the demo started is stopped and removed on exit"
  echo "kept: $prepull (try $prepull --help)"
}

main "$@"
