# shellcheck shell=bash
# lib.sh: what scripts/test.sh and scripts/demo.sh share. Source it, do not
# run it. It is the one place that knows which Debian packages prepull's
# tests and demo need.

# Go from the official tarball lives in /usr/local/go, which a non-login
# shell's PATH may lack.
if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
  PATH="/usr/local/go/bin:$PATH"
fi

# install_go puts the Go toolchain that go.mod names into /usr/local/go. It
# comes from the Go module proxy as the module golang.org/toolchain, fetched
# by Debian's older Go (which only downloads it), so that a fresh machine
# needs nothing but apt-get and the module proxy.
install_go() {
  local version dir
  version="$(sed -n 's/^go \([0-9][0-9.]*\)$/\1/p' go.mod)"
  [[ -n "$version" ]] || { printf 'error: no go line in go.mod\n' >&2; return 1; }
  echo "installing Go $version into /usr/local/go (from the Go module proxy)"
  if [[ ! -x /usr/lib/go-1.19/bin/go ]]; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends golang-1.19-go ca-certificates
  fi
  local tmp
  tmp="$(mktemp -d)"
  dir="$(cd "$tmp" && env GOPATH="$tmp/gopath" GOMODCACHE="$tmp/mod" GOFLAGS=-modcacherw GOTOOLCHAIN=local \
    /usr/lib/go-1.19/bin/go mod download -json "golang.org/toolchain@v0.0.1-go${version}.linux-$(dpkg --print-architecture)" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  if [[ -z "$dir" || ! -f "$dir/bin/go" ]]; then
    rm -rf "$tmp"
    printf 'error: could not download Go %s from the Go module proxy\n' "$version" >&2
    return 1
  fi
  rm -rf /usr/local/go.new
  cp -a "$dir" /usr/local/go.new
  # Module zips carry no executable bits.
  chmod -R u+w /usr/local/go.new
  chmod 755 /usr/local/go.new/bin/* /usr/local/go.new/pkg/tool/*/*
  rm -rf /usr/local/go "$tmp"
  mv /usr/local/go.new /usr/local/go
  PATH="/usr/local/go/bin:$PATH"
  go version
}

if ! command -v go >/dev/null 2>&1; then
  if [[ "$(id -u)" -ne 0 ]]; then
    printf 'error: %s\n' "Go is not installed: install Go 1.26 or later (in /usr/local/go or on PATH), or run this as root, which installs it" >&2
    exit 1
  fi
  install_go || exit 1
fi

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

# missing_packages prints, one a line, the Debian packages whose programs
# are missing.
missing_packages() {
  local -a parts=(
    "dockerd docker.io"
    "docker-registry docker-registry"
    "htpasswd apache2-utils"
    "sshd openssh-server"
    "unzip unzip"
    "systemd-analyze systemd"
    "ip iproute2"
    "debootstrap debootstrap"
    "systemd-nspawn systemd-container"
    "gpg gnupg"
    "pass pass"
    "docker-credential-pass golang-docker-credential-helpers"
    "docker-credential-ecr-login amazon-ecr-credential-helper"
    "nsenter util-linux"
  )
  local part
  for part in "${parts[@]}"; do
    have_cmd "${part%% *}" || printf '%s\n' "${part#* }"
  done
  # The docker CLI: Debian's, not just any docker on PATH.
  [[ -x /usr/bin/docker ]] || printf '%s\n' docker.io
}

# install_missing installs the missing packages when run as root, with
# services kept from starting during the install; without root it names what
# to install and goes on (the end-to-end tests then fail saying the same).
install_missing() {
  local -a pkgs
  mapfile -t pkgs < <(missing_packages | sort -u)
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
  local tmp
  tmp="$(mktemp -d)"
  chmod 755 "$tmp" # apt-get download writes as its own user where it can
  if ! (cd "$tmp" && apt-get download prometheus prometheus-node-exporter); then
    apt-get update
    (cd "$tmp" && apt-get download prometheus prometheus-node-exporter) || { rm -rf "$tmp"; return 1; }
  fi
  rm -rf "$PROMETHEUS_DIR.new"
  mkdir -p "$PROMETHEUS_DIR.new"
  local deb
  for deb in "$tmp"/*.deb; do
    dpkg -x "$deb" "$PROMETHEUS_DIR.new"
  done
  rm -rf "$tmp" "$PROMETHEUS_DIR"
  mv "$PROMETHEUS_DIR.new" "$PROMETHEUS_DIR"
  echo "unpacked promtool and the node exporter into $PROMETHEUS_DIR"
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
