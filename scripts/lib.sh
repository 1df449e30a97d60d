# shellcheck shell=bash
# lib.sh: what scripts/test.sh and scripts/demo.sh share. Source it, do not
# run it. It is the one place that knows which Debian packages prepull's
# tests and demo need.

# Go from the official tarball lives in /usr/local/go, which a non-login
# shell's PATH may lack.
if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
  PATH="/usr/local/go/bin:$PATH"
fi

# go_setting NAME prints the machine's Go setting NAME (GOPROXY, GOSUMDB):
# the environment's, else the Go environment file's (GOENV, or
# $XDG_CONFIG_HOME/go/env), as the go command reads them. Nothing when
# neither sets it.
go_setting() {
  local file="${GOENV:-${XDG_CONFIG_HOME:-$HOME/.config}/go/env}"
  if [[ -n "${!1:-}" ]]; then
    printf '%s\n' "${!1}"
  elif [[ -r "$file" ]]; then
    sed -n "s/^$1=//p" "$file" | tail -n 1
  fi
}

# go_proxy prints the Go module proxy to fetch from: GOPROXY's first entry
# that is a URL (as the go command reads the list). The machine names its
# proxy; none is assumed.
go_proxy() {
  local entry
  for entry in $(tr ',|' '  ' <<<"$(go_setting GOPROXY)"); do
    case "$entry" in
      http://* | https://*) printf '%s\n' "${entry%/}"; return ;;
      off) printf 'error: GOPROXY=off: Go cannot be downloaded\n' >&2; return 1 ;;
    esac
  done
  printf 'error: no Go module proxy configured: set GOPROXY (environment or go env file) to fetch Go\n' >&2
  return 1
}

# fetch_url URL FILE downloads URL into FILE with curl or wget.
fetch_url() {
  if command -v curl >/dev/null 2>&1; then
    curl -fsSL --retry 3 -o "$2" "$1"
  else
    wget -q --tries=3 -O "$2" "$1"
  fi
}

# go_dirhash DIR prints the go.sum hash ("h1:...") of the files under DIR,
# named relative to it: SHA-256 over "SHA256  NAME" lines in byte order,
# as the checksum database records a module zip's.
go_dirhash() {
  local sum
  sum="$(cd "$1" && find . -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)"
  # shellcheck disable=SC2059 # the format is the digest as \xHH escapes
  printf 'h1:%s\n' "$(printf "$(sed 's/../\\x&/g' <<<"$sum")" | base64)"
}

# go_version prints the Go version go.mod asks for: its toolchain line, else
# its go line.
go_version() {
  local v
  v="$(sed -n 's/^toolchain go\([0-9][0-9.]*\)$/\1/p' go.mod)"
  [[ -n "$v" ]] || v="$(sed -n 's/^go \([0-9][0-9.]*\)$/\1/p' go.mod)"
  [[ -n "$v" ]] || { printf 'error: no go line in go.mod\n' >&2; return 1; }
  printf '%s\n' "$v"
}

# install_go [DEST] puts the Go toolchain that go.mod names into DEST
# (/usr/local/go by default). It is the module golang.org/toolchain's zip,
# fetched from the Go module proxy (GOPROXY) and checked against the
# checksum database (GOSUMDB, through the proxy when it serves it) unless
# GOSUMDB=off. Only
# curl or wget, unzip and coreutils are needed; apt-get installs the first
# two when missing.
install_go() {
  local dest="${1:-/usr/local/go}" version arch proxy mod ver tmp want got sumdb
  version="$(go_version)" || return 1
  arch="$(uname -m)"
  case "$arch" in
    x86_64) arch=amd64 ;;
    aarch64) arch=arm64 ;;
  esac
  proxy="$(go_proxy)" || return 1
  mod=golang.org/toolchain
  ver="v0.0.1-go${version}.linux-${arch}"
  echo "installing Go $version into $dest (from the Go module proxy $proxy)"
  if ! command -v unzip >/dev/null 2>&1 || ! { command -v curl || command -v wget; } >/dev/null 2>&1; then
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends curl ca-certificates unzip || return 1
  fi
  tmp="$(mktemp -d)"
  if ! fetch_url "$proxy/$mod/@v/$ver.zip" "$tmp/go.zip" || ! unzip -q "$tmp/go.zip" -d "$tmp/x"; then
    printf 'error: could not download %s@%s from %s\n' "$mod" "$ver" "$proxy" >&2
    rm -rf "$tmp"
    return 1
  fi
  sumdb="$(go_setting GOSUMDB)"
  if [[ -z "$sumdb" ]]; then
    printf 'error: no checksum database configured: set GOSUMDB (or GOSUMDB=off to skip the check)\n' >&2
    rm -rf "$tmp"
    return 1
  fi
  if [[ "$sumdb" != off ]]; then
    sumdb="${sumdb%% *}"
    if ! fetch_url "$proxy/sumdb/$sumdb/lookup/$mod@$ver" "$tmp/lookup" 2>/dev/null &&
      ! fetch_url "https://$sumdb/lookup/$mod@$ver" "$tmp/lookup"; then
      printf 'error: could not look %s@%s up in the checksum database %s (GOSUMDB=off skips the check)\n' "$mod" "$ver" "$sumdb" >&2
      rm -rf "$tmp"
      return 1
    fi
    want="$(awk -v m="$mod" -v v="$ver" '$1 == m && $2 == v { print $3; exit }' "$tmp/lookup")"
    got="$(go_dirhash "$tmp/x")"
    if [[ -z "$want" || "$got" != "$want" ]]; then
      printf 'error: %s@%s from %s: hash %s, the checksum database says %s\n' "$mod" "$ver" "$proxy" "$got" "${want:-nothing}" >&2
      rm -rf "$tmp"
      return 1
    fi
    echo "checked against $sumdb: $got"
  fi
  rm -rf "$dest.new"
  mkdir -p "$(dirname "$dest")"
  mv "$tmp/x/$mod@$ver" "$dest.new"
  # Module zips carry no executable bits.
  chmod -R u+w "$dest.new"
  chmod 755 "$dest.new"/bin/* "$dest.new"/pkg/tool/*/*
  rm -rf "$dest" "$tmp"
  mv "$dest.new" "$dest"
  PATH="$dest/bin:$PATH"
  go version
}

if ! command -v go >/dev/null 2>&1; then
  if [[ "$(id -u)" -ne 0 ]]; then
    printf 'error: %s\n' "Go is not installed: install Go 1.26 or later (in /usr/local/go or on PATH), or run this as root, which installs it" >&2
    exit 1
  fi
  install_go || exit 1
fi

# TARGETS are the systems prepull builds for, GOOS/GOARCH, with
# CGO_ENABLED=0: the Cloud Proxy and the admins' workstations. scripts/test.sh
# cross-compiles each, scripts/release.sh packs each.
TARGETS=(linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64)

# section prints a header that stands out in long output.
section() {
  printf '\n==> %s\n' "$*"
}

# die prints its arguments to standard error and exits 1.
die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

# have_cmd tells whether a program is installed, looking in the sbin
# directories too, which a non-root PATH lacks.
have_cmd() {
  command -v "$1" >/dev/null 2>&1 || [[ -x "/usr/sbin/$1" || -x "/sbin/$1" ]]
}

# TEST_PARTS are the machine's own tools the tests run, as "program package"
# pairs: installed with apt-get when missing. Nothing here changes what the
# machine's own docker CLI does: the credential helpers and pass, which the
# CLI would pick up as its store, are TEST_TOOLS, never installed.
TEST_PARTS=(
  "dockerd docker.io"
  "docker-registry docker-registry"
  "htpasswd apache2-utils"
  "sshd openssh-server"
  "unzip unzip"
  "zip zip"
  "systemd-analyze systemd"
  "ip iproute2"
  "debootstrap debootstrap"
  "systemd-nspawn systemd-container"
  "nsenter util-linux"
)

# DEMO_PARTS are the only packages scripts/demo.sh installs: what it runs.
DEMO_PARTS=(
  "dockerd docker.io"
  "docker-registry docker-registry"
  "htpasswd apache2-utils"
)

# missing_packages prints, one a line, the Debian packages of the given
# "program package" pairs whose programs are missing.
missing_packages() {
  local part
  for part in "$@"; do
    have_cmd "${part%% *}" || printf '%s\n' "${part#* }"
  done
  # The docker CLI: Debian's, not just any docker on PATH.
  [[ -x /usr/bin/docker ]] || printf '%s\n' docker.io
}

# install_missing installs the missing packages of the given "program
# package" pairs when run as root, with services kept from starting during
# the install; without root it names what to install and goes on (the
# end-to-end tests then fail saying the same).
install_missing() {
  local -a pkgs
  mapfile -t pkgs < <(missing_packages "$@" | sort -u)
  if ((${#pkgs[@]} == 0)); then
    echo "all parts present"
    return 0
  fi
  if [[ "$(id -u)" -ne 0 ]]; then
    echo "warning: missing ${pkgs[*]}; as root: apt-get install ${pkgs[*]}" >&2
    return 0
  fi
  echo "installing ${pkgs[*]}"
  apt-get update
  with_services_held DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${pkgs[@]}"
}

# unpack_debs downloads Debian packages (apt-get download, no dependencies
# resolved) and unpacks them (dpkg -x) into a folder of their own, replacing
# it whole: nothing is installed, no maintainer script runs.
unpack_debs() {
  local dir="$1" tmp deb
  shift
  tmp="$(mktemp -d)"
  chmod 755 "$tmp" # apt-get download writes as its own user where it can
  if ! (cd "$tmp" && apt-get download "$@"); then
    apt-get update
    (cd "$tmp" && apt-get download "$@") || { rm -rf "$tmp"; return 1; }
  fi
  rm -rf "$dir.new"
  mkdir -p "$dir.new"
  for deb in "$tmp"/*.deb; do
    dpkg -x "$deb" "$dir.new"
  done
  rm -rf "$tmp" "$dir"
  mv "$dir.new" "$dir"
}

# PROMETHEUS_DIR is where the metrics tests find promtool and the node
# exporter (internal/testenv's PrometheusDir says the same): Debian's
# prometheus and prometheus-node-exporter unpacked, never installed, since
# installing them creates users and starts services on this machine.
PROMETHEUS_DIR=/var/cache/prepull-test/prometheus

# unpack_prometheus puts promtool and the node exporter into PROMETHEUS_DIR
# (apt-get download, then dpkg -x), once; without root it says what is
# missing and goes on (the metrics tests then fail saying the same).
unpack_prometheus() {
  if [[ -x "$PROMETHEUS_DIR/usr/bin/promtool" && -x "$PROMETHEUS_DIR/usr/bin/prometheus-node-exporter" ]]; then
    echo "promtool and the node exporter are unpacked in $PROMETHEUS_DIR"
    return 0
  fi
  if [[ "$(id -u)" -ne 0 ]]; then
    echo "warning: promtool and the node exporter are not in $PROMETHEUS_DIR; scripts/test.sh as root unpacks them" >&2
    return 0
  fi
  unpack_debs "$PROMETHEUS_DIR" prometheus prometheus-node-exporter || return 1
  echo "unpacked promtool and the node exporter into $PROMETHEUS_DIR"
}

# GNU_TIME_DIR is where the benchmarks find GNU time when the machine has
# none (internal/bench's gnuTimes says the same): Debian's time unpacked,
# never installed, a tool only the benchmarks need.
GNU_TIME_DIR=/var/cache/prepull-test/time

# unpack_gnu_time puts GNU time into GNU_TIME_DIR once, unless the machine
# has its own; without root it says what is missing and goes on (the
# benchmarks then fail saying the same).
unpack_gnu_time() {
  if [[ -x /usr/bin/time || -x "$GNU_TIME_DIR/usr/bin/time" ]]; then
    echo "GNU time is there (the machine's, or unpacked in $GNU_TIME_DIR)"
    return 0
  fi
  if [[ "$(id -u)" -ne 0 ]]; then
    echo "warning: no GNU time; scripts/test.sh as root unpacks it into $GNU_TIME_DIR" >&2
    return 0
  fi
  unpack_debs "$GNU_TIME_DIR" time || return 1
  echo "unpacked GNU time into $GNU_TIME_DIR"
}

# TOOLS_DIR holds the programs only the credential tests run (internal/
# testenv's ToolsDir says the same): pass, Docker's and Amazon's credential
# helpers, and GnuPG when the machine lacks it, unpacked into root/ and
# started through the wrappers in bin/, which the tests put first on their
# own PATH. Installed on the machine, docker-credential-pass or
# -secretservice would become the store of every plain `docker login`
# there, which then fails ("pass not initialized").
TOOLS_DIR=/var/cache/prepull-test/tools

# test_tools_packages prints the packages TOOLS_DIR holds: GnuPG's only when
# the machine has no gpg of its own.
test_tools_packages() {
  printf '%s\n' pass tree golang-docker-credential-helpers amazon-ecr-credential-helper
  if ! have_cmd gpg || ! have_cmd gpg-agent || ! have_cmd gpgconf; then
    printf '%s\n' gpg gpg-agent gpgconf libassuan0 libnpth0
  fi
}

# write_tool_wrapper writes TOOLS_DIR/bin/NAME, which runs root/usr/bin/NAME
# with the libraries unpacked beside it; gpg also gets the gpg-agent
# unpacked there, since its own would be looked for in /usr/bin.
write_tool_wrapper() {
  local name="$1" root="$TOOLS_DIR/root.new" libs="" dir extra=""
  for dir in "$root"/usr/lib/*-linux-gnu "$root"/lib/*-linux-gnu; do
    [[ -d "$dir" ]] && libs="$libs${libs:+:}${dir/root.new/root}"
  done
  if [[ "$name" == gpg && -x "$root/usr/bin/gpg-agent" ]]; then
    extra=" --agent-program $TOOLS_DIR/root/usr/bin/gpg-agent"
  fi
  {
    printf '#!/bin/sh\n# scripts/lib.sh: %s unpacked for prepull'"'"'s tests, not installed.\n' "$name"
    [[ -n "$libs" ]] && printf 'LD_LIBRARY_PATH=%s${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}\nexport LD_LIBRARY_PATH\n' "$libs"
    printf 'exec %s/root/usr/bin/%s%s "$@"\n' "$TOOLS_DIR" "$name" "$extra"
  } >"$TOOLS_DIR/bin.new/$name"
  chmod 755 "$TOOLS_DIR/bin.new/$name"
}

# unpack_test_tools fills TOOLS_DIR, once per list of packages; without root
# it says what is missing and goes on (the credential tests then fail
# saying the same).
unpack_test_tools() {
  local want name
  want="$(test_tools_packages)"
  if [[ -x "$TOOLS_DIR/bin/docker-credential-pass" && "$(cat "$TOOLS_DIR/packages" 2>/dev/null)" == "$want" ]]; then
    echo "the credential tests' tools are unpacked in $TOOLS_DIR"
    return 0
  fi
  if [[ "$(id -u)" -ne 0 ]]; then
    echo "warning: the credential tests' tools are not in $TOOLS_DIR; scripts/test.sh as root unpacks them" >&2
    return 0
  fi
  mkdir -p "$TOOLS_DIR"
  # shellcheck disable=SC2086 # one package a word
  unpack_debs "$TOOLS_DIR/root.new" $want || return 1
  rm -rf "$TOOLS_DIR/bin.new"
  mkdir -p "$TOOLS_DIR/bin.new"
  for name in pass tree docker-credential-pass docker-credential-ecr-login gpg gpg-agent gpgconf gpg-connect-agent; do
    [[ -x "$TOOLS_DIR/root.new/usr/bin/$name" ]] && write_tool_wrapper "$name"
  done
  rm -rf "$TOOLS_DIR/root" "$TOOLS_DIR/bin"
  mv "$TOOLS_DIR/root.new" "$TOOLS_DIR/root"
  mv "$TOOLS_DIR/bin.new" "$TOOLS_DIR/bin"
  printf '%s\n' "$want" >"$TOOLS_DIR/packages"
  echo "unpacked $(tr '\n' ' ' <<<"$want")into $TOOLS_DIR (programs in $TOOLS_DIR/bin)"
}

# with_services_held runs a command (VAR=value words first allowed) while
# /usr/sbin/policy-rc.d forbids starting services, so that installing
# docker.io starts no system dockerd beside the tests' own.
with_services_held() {
  local policy=/usr/sbin/policy-rc.d rc=0
  if [[ -e "$policy" ]]; then
    env "$@"
    return
  fi
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  env "$@" || rc=$?
  rm -f "$policy"
  return "$rc"
}
