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
