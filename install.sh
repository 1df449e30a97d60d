#!/bin/sh
# install.sh: installs prepull as the Cloud Proxy service (prepull agent).
# Run ./install.sh --help for what it does. POSIX sh, coreutils and, when
# systemd runs, systemctl: nothing else, so it works on Photon OS as on
# Debian. Safe to run again: it changes only what differs.
set -eu
# Our own umask, whatever the caller's: folders this creates as a side
# effect (DESTDIR/etc, /usr/local/bin, /etc/docker, ...) are never writable by
# others, and every file gets an explicit mode anyway.
umask 022

usage() {
	cat <<'EOF'
Usage: install.sh [--binary PATH] [--no-start] [--network-logins | --no-network-logins]
       install.sh --uninstall [--purge]

Installs prepull as a systemd service on this Cloud Proxy:
  /usr/local/bin/prepull                  the binary (--binary PATH, the one
                                          beside install.sh in a release, or
                                          built from this checkout with Go)
  /usr/share/bash-completion/completions/prepull
                                          the bash completion
  /etc/systemd/system/prepull.service     the unit
  /etc/prepull/config.yaml                the example configuration, only when
                                          there is none; an edited one is kept
                                          and the new example is written beside
                                          it as config.yaml.example
  /var/lib/prepull/inbox/                 the drop folder (mode 0700, root)
  /usr/local/share/man/man1/prepull*.1    the man pages, from docs/man
  /etc/systemd/system/prepull.service.d/network-logins.conf
                                          only with --network-logins
  /etc/systemd/system/prepull.service.d/metrics-file.conf
                                          only when config.yaml's metrics_file
                                          is outside the unit's default folder
                                          /var/lib/prometheus/node-exporter
                                          (which is created when missing)
Then, when systemd runs: systemctl daemon-reload and enable --now prepull
(a running agent is restarted onto the new binary).

Options:
  --binary PATH   install this prepull binary instead of building one
  --no-start      install, but do not enable or start the service
  --network-logins
                  let the service reach the network, for a credential
                  helper or password_command that fetches a token over it
                  (AWS ECR) or a TCP docker_host; the unit has no network
                  otherwise. Kept by later runs without the option.
  --no-network-logins
                  remove that again
  --uninstall     stop and disable the service, remove the binary and the
                  unit; keep the configuration and the state
  --purge         with --uninstall: also remove /etc/prepull and
                  /var/lib/prepull (state, and the paks in inbox/, done/
                  and failed/)
  -h, --help      show this help

Environment:
  DESTDIR         install under this root, for packaging and tests; systemctl
                  is never called then
EOF
}

die() {
	printf 'install.sh: %s\n' "$*" >&2
	exit 1
}

say() {
	printf '%s\n' "$*"
}

binary=""
start=1
network=""
uninstall=0
purge=0
while [ $# -gt 0 ]; do
	case "$1" in
	--binary)
		[ $# -ge 2 ] || { usage >&2; exit 2; }
		binary="$2"
		shift 2
		;;
	--binary=*)
		binary="${1#--binary=}"
		shift
		;;
	--no-start) start=0; shift ;;
	--network-logins) network=1; shift ;;
	--no-network-logins) network=0; shift ;;
	--uninstall) uninstall=1; shift ;;
	--purge) purge=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*)
		printf 'install.sh: unknown option %s\n\n' "$1" >&2
		usage >&2
		exit 2
		;;
	esac
done
if [ "$purge" = 1 ] && [ "$uninstall" = 0 ]; then
	die "--purge goes with --uninstall"
fi
if [ -n "$network" ] && [ "$uninstall" = 1 ]; then
	die "--network-logins and --no-network-logins go with an install, not --uninstall"
fi

src="$(cd "$(dirname "$0")" && pwd)"
DESTDIR="${DESTDIR:-}"
bindir="$DESTDIR/usr/local/bin"
unitdir="$DESTDIR/etc/systemd/system"
dropin="$unitdir/prepull.service.d/network-logins.conf"
metricsdropin="$unitdir/prepull.service.d/metrics-file.conf"
confdir="$DESTDIR/etc/prepull"
statedir="$DESTDIR/var/lib/prepull"
certsdir="$DESTDIR/etc/docker/certs.d"
compdir="$DESTDIR/usr/share/bash-completion/completions"
mandir="$DESTDIR/usr/local/share/man/man1"

# use_systemctl tells whether to manage the service: systemd runs and the
# install is for this machine, not into DESTDIR.
use_systemctl() {
	[ -z "$DESTDIR" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1
}

# same_content tells whether two files hold the same bytes: with cmp where
# diffutils is installed, with sha256sum (coreutils) where it is not, as on
# a minimal Photon OS.
same_content() {
	if command -v cmp >/dev/null 2>&1; then
		cmp -s "$1" "$2"
	else
		[ "$(sha256sum <"$1")" = "$(sha256sum <"$2")" ]
	fi
}

# install_file MODE SRC DST installs SRC as DST unless DST has the same
# content already, and sets the mode either way.
install_file() {
	if [ -f "$3" ] && same_content "$2" "$3"; then
		chmod "$1" "$3"
		say "unchanged $3"
		return 0
	fi
	# Into a temporary name first, then renamed: a running binary is never
	# overwritten in place.
	install -m "$1" "$2" "$3.tmp.$$"
	mv -f "$3.tmp.$$" "$3"
	say "installed $3"
}

# make_dir MODE DIR makes DIR (and its parents) and sets its mode.
make_dir() {
	mkdir -p "$2"
	chmod "$1" "$2"
}

if [ "$uninstall" = 1 ]; then
	if use_systemctl; then
		systemctl disable --now prepull.service 2>/dev/null || true
	fi
	for f in "$bindir/prepull" "$compdir/prepull" "$unitdir/prepull.service" "$dropin" "$metricsdropin" "$mandir"/prepull.1 "$mandir"/prepull-*.1; do
		if [ -e "$f" ]; then
			rm -f "$f"
			say "removed $f"
		fi
	done
	rmdir "${dropin%/*}" 2>/dev/null || true
	if use_systemctl; then
		systemctl daemon-reload
	fi
	if [ "$purge" = 1 ]; then
		for d in "$confdir" "$statedir"; do
			if [ -e "$d" ]; then
				rm -rf "$d"
				say "removed $d"
			fi
		done
	else
		say "kept $confdir and $statedir (--purge removes them)"
	fi
	exit 0
fi

[ -f "$src/systemd/prepull.service" ] || die "$src/systemd/prepull.service not found: run install.sh from a prepull checkout or release folder"
[ -f "$src/configs/prepull.yaml" ] || die "$src/configs/prepull.yaml not found"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT INT TERM

# A release archive (scripts/release.sh) holds the binary beside this script
# and no go.mod: install that one, with no Go toolchain needed.
if [ -z "$binary" ] && [ ! -f "$src/go.mod" ] && [ -f "$src/prepull" ]; then
	binary="$src/prepull"
fi
if [ -z "$binary" ]; then
	command -v go >/dev/null 2>&1 || die "no Go toolchain here: build prepull elsewhere (CGO_ENABLED=0 go build ./cmd/prepull) and pass --binary PATH"
	[ -f "$src/go.mod" ] || die "no go.mod in $src: pass --binary PATH"
	say "building prepull from $src"
	version="$(git -C "$src" describe --tags --always --dirty 2>/dev/null || echo dev)"
	commit="$(git -C "$src" rev-parse HEAD 2>/dev/null || true)"
	date="$(TZ=UTC git -C "$src" log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ 2>/dev/null || true)"
	pkg=github.com/prepull/prepull/internal/cli
	(cd "$src" && CGO_ENABLED=0 go build -trimpath \
		-ldflags "-s -w -X $pkg.Version=$version -X $pkg.Commit=$commit -X $pkg.CommitDate=$date" \
		-o "$work/prepull" ./cmd/prepull) || die "go build failed"
	binary="$work/prepull"
fi
[ -f "$binary" ] && [ -x "$binary" ] || die "--binary $binary: not an executable file"

was_active=0
if use_systemctl && systemctl is-active --quiet prepull.service; then
	was_active=1
fi

make_dir 0755 "$bindir"
make_dir 0755 "$unitdir"
install_file 0755 "$binary" "$bindir/prepull"
install_file 0644 "$src/systemd/prepull.service" "$unitdir/prepull.service"

# The bash completion, as the binary itself writes it; bash-completion loads
# it the first time prepull is completed.
if "$binary" completion bash >"$work/prepull.bash" 2>/dev/null; then
	make_dir 0755 "$compdir"
	install_file 0644 "$work/prepull.bash" "$compdir/prepull"
else
	printf 'install.sh: warning: %s does not run here: no bash completion installed\n' "$binary" >&2
fi

# The man pages, one per command (made from the command line into docs/man).
# A folder holding only the binary, the unit and the configuration has none.
if [ -f "$src/docs/man/prepull.1" ]; then
	make_dir 0755 "$mandir"
	for page in "$src"/docs/man/*.1; do
		install_file 0644 "$page" "$mandir/${page##*/}"
	done
	# A page of a command that is gone.
	for page in "$mandir"/prepull.1 "$mandir"/prepull-*.1; do
		if [ -e "$page" ] && [ ! -e "$src/docs/man/${page##*/}" ]; then
			rm -f "$page"
			say "removed $page"
		fi
	done
else
	say "no man pages in $src/docs/man: none installed"
fi

# The network drop-in: installed with --network-logins, removed with
# --no-network-logins, and otherwise kept (and updated) when it is there.
if [ "$network" = 0 ]; then
	if [ -e "$dropin" ]; then
		rm -f "$dropin"
		rmdir "${dropin%/*}" 2>/dev/null || true
		say "removed $dropin: the service has no network again"
	fi
elif [ "$network" = 1 ] || [ -e "$dropin" ]; then
	make_dir 0755 "${dropin%/*}"
	install_file 0644 "$src/systemd/network-logins.conf" "$dropin"
	[ "$network" = 1 ] || say "kept $dropin (--no-network-logins removes it)"
fi

# The configuration folder holds password files: only root may look in.
make_dir 0700 "$confdir"
if [ ! -e "$confdir/config.yaml" ]; then
	install -m 0600 "$src/configs/prepull.yaml" "$confdir/config.yaml"
	say "installed $confdir/config.yaml (edit it: registries and their password files)"
elif same_content "$src/configs/prepull.yaml" "$confdir/config.yaml"; then
	say "unchanged $confdir/config.yaml"
else
	install_file 0600 "$src/configs/prepull.yaml" "$confdir/config.yaml.example"
	say "kept your $confdir/config.yaml"
fi

# Secrets must be root's alone. The folder is 0700, but a file that is
# readable by others is one chmod or one copy away from being read, so say so.
warn_exposed() {
	[ -f "$1" ] || return 0
	mode="$(stat -L -c %a "$1")"
	if [ $((0$mode & 077)) -ne 0 ]; then
		printf 'install.sh: warning: %s is accessible by group or others (mode %s): chmod 600 %s\n' "$1" "$mode" "$1" >&2
	fi
}
warn_exposed "$confdir/config.yaml"
# The password files config.yaml names: every "password_file: PATH", in
# block or flow style, read with the shell alone (no sed or grep needed).
while IFS= read -r line || [ -n "$line" ]; do
	rest="$line"
	while :; do
		case "$rest" in
		*password_file:*) rest="${rest#*password_file:}" ;;
		*) break ;;
		esac
		f="${rest#"${rest%%[! 	]*}"}"  # leading blanks
		case "$f" in
		\"*) f="${f#\"}"; f="${f%%\"*}" ;;
		\'*) f="${f#\'}"; f="${f%%\'*}" ;;
		*) f="${f%%[	 ,\}#]*}" ;;
		esac
		case "$f" in
		/*) warn_exposed "$DESTDIR$f" ;;
		esac
	done
done <"$confdir/config.yaml"

# metrics_file: the unit may write the node exporter's textfile folder; a
# metrics_file elsewhere gets its folder through a drop-in. The folder must
# exist when the unit starts for the unit to let the agent write it.
metrics=""
while IFS= read -r line || [ -n "$line" ]; do
	case "$line" in
	metrics_file:*)
		metrics="${line#metrics_file:}"
		metrics="${metrics#"${metrics%%[! 	]*}"}"
		case "$metrics" in
		\"*) metrics="${metrics#\"}"; metrics="${metrics%%\"*}" ;;
		\'*) metrics="${metrics#\'}"; metrics="${metrics%%\'*}" ;;
		*) metrics="${metrics%%[	 #]*}" ;;
		esac
		;;
	esac
done <"$confdir/config.yaml"
metricsdefault=/var/lib/prometheus/node-exporter
case "$metrics" in
"") metricsdir="" ;;
/*/*.prom) metricsdir="${metrics%/*}" ;;
*) die "$confdir/config.yaml: metrics_file $metrics: must be an absolute path to a file ending in .prom" ;;
esac
case "$metricsdir" in
*[!A-Za-z0-9/._-]*) die "$confdir/config.yaml: metrics_file $metrics: its folder may hold only letters, digits and / . _ - (it goes into the unit's ReadWritePaths=)" ;;
esac
if [ -n "$metricsdir" ] && [ ! -d "$DESTDIR$metricsdir" ]; then
	make_dir 0755 "$DESTDIR$metricsdir"
	say "created $DESTDIR$metricsdir (metrics_file's folder)"
fi
if [ -n "$metricsdir" ] && [ "$metricsdir" != "$metricsdefault" ]; then
	make_dir 0755 "${metricsdropin%/*}"
	printf '# Written by install.sh: metrics_file in /etc/prepull/config.yaml is in this folder.\n[Service]\nReadWritePaths=-%s\n' "$metricsdir" >"$work/metrics-file.conf"
	install_file 0644 "$work/metrics-file.conf" "$metricsdropin"
elif [ -e "$metricsdropin" ]; then
	rm -f "$metricsdropin"
	rmdir "${metricsdropin%/*}" 2>/dev/null || true
	say "removed $metricsdropin: metrics_file is unset or in $metricsdefault"
fi

# The drop folder: anyone who can write to it can make the agent pull with
# its credentials, so it is root's alone (the agent refuses anything looser).
make_dir 0700 "$statedir"
make_dir 0700 "$statedir/inbox"

# Where Docker Engine reads registry CAs: the agent installs a registry's
# ca_file there, and its unit may write only to folders that exist at start.
if [ ! -d "$certsdir" ]; then
	make_dir 0755 "$certsdir"
	say "created $certsdir (registry CAs from ca_file go here)"
fi

if use_systemctl; then
	systemctl daemon-reload
	if [ "$start" = 1 ]; then
		systemctl enable --now prepull.service
		if [ "$was_active" = 1 ]; then
			systemctl restart prepull.service
		fi
		say "prepull agent is running: copy paks into /var/lib/prepull/inbox; see prepull status and journalctl -u prepull"
	else
		say "not started (--no-start): systemctl enable --now prepull"
	fi
else
	say "systemd not managed here (DESTDIR set or systemd not running): start prepull agent yourself"
fi
