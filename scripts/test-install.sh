#!/usr/bin/env bash
# test-install.sh: tests install.sh into a DESTDIR: the files and their
# modes, an edited configuration kept, a second run changing nothing,
# the man pages, --uninstall keeping configuration and state, --purge
# removing them, --help,
# its own umask, warnings about secrets readable by others, the network
# drop-in, and that systemctl is never called under DESTDIR. The installed
# unit is checked with systemd-analyze verify.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
dest="$work/root"
fails=0

fail() {
  printf 'FAIL: %s\n' "$*" >&2
  fails=$((fails + 1))
}

# want_mode PATH MODE checks that PATH exists with octal MODE.
want_mode() {
  local got
  if [[ ! -e "$1" ]]; then
    fail "$1 missing"
    return
  fi
  got="$(stat -c %a "$1")"
  [[ "$got" == "$2" ]] || fail "$1 has mode $got, want $2"
}

# A systemctl that records its calls: under DESTDIR none may happen.
mkdir -p "$work/bin"
printf '#!/bin/sh\necho "$@" >>"%s/systemctl.calls"\n' "$work" >"$work/bin/systemctl"
chmod +x "$work/bin/systemctl"
export PATH="$work/bin:$PATH"

go build -o "$work/prepull" ./cmd/prepull

echo "--- --help"
./install.sh --help | grep -- '--uninstall' >/dev/null || fail "--help does not describe --uninstall"
rc=0
./install.sh --bogus >/dev/null 2>&1 || rc=$?
[[ "$rc" == 2 ]] || fail "an unknown option exits $rc, want 2"

echo "--- install with --binary, under umask 000"
(umask 000 && DESTDIR="$dest" ./install.sh --binary "$work/prepull")
for d in "" etc etc/systemd etc/systemd/system etc/docker etc/docker/certs.d usr usr/local usr/local/bin var var/lib; do
  want_mode "$dest/$d" 755
done
[[ ! -e "$dest/etc/systemd/system/prepull.service.d" ]] || fail "the network drop-in was installed without --network-logins"
want_mode "$dest/usr/local/bin/prepull" 755
want_mode "$dest/etc/systemd/system/prepull.service" 644
want_mode "$dest/etc/prepull" 700
want_mode "$dest/etc/prepull/config.yaml" 600
want_mode "$dest/var/lib/prepull" 700
want_mode "$dest/var/lib/prepull/inbox" 700
cmp -s "$work/prepull" "$dest/usr/local/bin/prepull" || fail "the binary differs from --binary"
cmp -s systemd/prepull.service "$dest/etc/systemd/system/prepull.service" || fail "the unit differs from systemd/prepull.service"
"$dest/usr/local/bin/prepull" agent --help | grep watch_dir >/dev/null || fail "the installed binary has no agent command"
for page in docs/man/*.1; do
  want_mode "$dest/usr/local/share/man/man1/${page##*/}" 644
  cmp -s "$page" "$dest/usr/local/share/man/man1/${page##*/}" || fail "the man page ${page##*/} differs from $page"
done
if command -v man >/dev/null; then
  page="$(MANPATH="$dest/usr/local/share/man" man -P cat prepull-remote 2>/dev/null)" || true
  grep -q -- '--hosts-file' <<<"$page" || fail "man prepull-remote does not show the page installed"
fi

echo "--- the bash completion is installed, and completes commands and paks"
comp="$dest/usr/share/bash-completion/completions/prepull"
want_mode "$comp" 644
# bash-completion's _get_comp_words_by_ref, reduced to what the script asks
# of it: the host has no bash-completion package, and needs none for this.
shim='_get_comp_words_by_ref() { cur="${COMP_WORDS[COMP_CWORD]}"; prev="${COMP_WORDS[COMP_CWORD-1]}"; words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD; }'
out="$(bash -c "$shim"'; source "$1"; COMP_WORDS=("$2" rem); COMP_CWORD=1; COMP_LINE="$2 rem"; COMP_POINT=${#COMP_LINE}; __start_prepull "$2" rem "$2"; printf "%s\n" "${COMPREPLY[@]}"' _ "$comp" "$dest/usr/local/bin/prepull" 2>/dev/null)" || true # compopt complains outside a real completion

[[ "$out" == remote* ]] || fail "the bash completion does not complete 'prepull rem' to remote: $out"
# Captured first: grep -q stops reading at its match, and under pipefail the
# writer's SIGPIPE would fail the check whenever the match is not the last line.
paks="$("$dest/usr/local/bin/prepull" __complete inspect '' 2>/dev/null)"
grep -qx ':8' <<<"$paks" || fail "pak arguments do not complete to files by extension (directive 8)"
grep -qx 'pak' <<<"$paks" || fail "pak arguments do not complete to .pak files"

echo "--- the installed unit passes systemd-analyze verify"
sed "s|/usr/local/bin/prepull|$dest/usr/local/bin/prepull|" "$dest/etc/systemd/system/prepull.service" >"$work/prepull.service"
out="$(systemd-analyze verify "$work/prepull.service" 2>&1)" || fail "systemd-analyze verify failed: $out"
[[ -z "$out" ]] || fail "systemd-analyze verify: $out"

echo "--- a second run changes nothing"
snapshot() { (cd "$dest" && find . -printf '%p %m %s\n' | sort && find . -type f -exec sha256sum {} + | sort); }
before="$(snapshot)"
DESTDIR="$dest" ./install.sh --binary "$work/prepull" >"$work/second.out"
[[ "$(snapshot)" == "$before" ]] || fail "the second run changed the tree"
grep -q "unchanged $dest/usr/local/bin/prepull" "$work/second.out" || fail "the second run did not report the binary unchanged"

echo "--- an edited configuration is kept"
echo "concurrency: 4" >>"$dest/etc/prepull/config.yaml"
edited="$(sha256sum <"$dest/etc/prepull/config.yaml")"
DESTDIR="$dest" ./install.sh --binary "$work/prepull" >/dev/null
[[ "$(sha256sum <"$dest/etc/prepull/config.yaml")" == "$edited" ]] || fail "install.sh overwrote the edited config.yaml"
cmp -s configs/prepull.yaml "$dest/etc/prepull/config.yaml.example" || fail "the new example is not beside the edited configuration"

echo "--- secrets readable by others are warned about"
cat >"$dest/etc/prepull/config.yaml" <<'EOF'
registries:
  - host: a.example
    username: u
    password_file: "/etc/prepull/a.password" # quoted
  - host: b.example
    username: u
    password_file: /etc/prepull/b.password
  - {host: c.example, username: u, password_file: '/etc/prepull/c.password'}
  - {host: d.example, username: u, password_file: /etc/prepull/d.password}
EOF
for f in a b c d; do printf 'secret\n' >"$dest/etc/prepull/$f.password"; done
chmod 644 "$dest/etc/prepull/config.yaml" "$dest/etc/prepull/a.password" "$dest/etc/prepull/c.password"
chmod 640 "$dest/etc/prepull/d.password"
chmod 600 "$dest/etc/prepull/b.password"
DESTDIR="$dest" ./install.sh --binary "$work/prepull" >/dev/null 2>"$work/warn.err"
grep -q "warning: $dest/etc/prepull/config.yaml is accessible by group or others (mode 644)" "$work/warn.err" || fail "no warning about a config.yaml readable by others: $(cat "$work/warn.err")"
for f in a.password:644 c.password:644 d.password:640; do
  grep -q "warning: $dest/etc/prepull/${f%:*} is accessible by group or others (mode ${f#*:}): chmod 600" "$work/warn.err" || fail "no warning about ${f%:*}, readable by others: $(cat "$work/warn.err")"
done
! grep -q "b.password" "$work/warn.err" || fail "a warning about a private password file: $(cat "$work/warn.err")"
want_mode "$dest/etc/prepull/config.yaml" 644 # warned about, never changed
chmod 600 "$dest/etc/prepull/config.yaml" "$dest/etc/prepull/"*.password
DESTDIR="$dest" ./install.sh --binary "$work/prepull" >/dev/null 2>"$work/warn.err"
[[ ! -s "$work/warn.err" ]] || fail "warnings with private files: $(cat "$work/warn.err")"

echo "--- --network-logins installs the drop-in; later runs keep it; --no-network-logins removes it"
dropin="$dest/etc/systemd/system/prepull.service.d/network-logins.conf"
DESTDIR="$dest" ./install.sh --binary "$work/prepull" --network-logins >/dev/null
want_mode "$dest/etc/systemd/system/prepull.service.d" 755
want_mode "$dropin" 644
cmp -s systemd/network-logins.conf "$dropin" || fail "the drop-in differs from systemd/network-logins.conf"
mkdir -p "$work/verify/prepull.service.d"
cp "$work/prepull.service" "$work/verify/prepull.service"
cp "$dropin" "$work/verify/prepull.service.d/"
out="$(systemd-analyze verify "$work/verify/prepull.service" 2>&1)" || fail "systemd-analyze verify with the drop-in failed: $out"
[[ -z "$out" ]] || fail "systemd-analyze verify with the drop-in: $out"
DESTDIR="$dest" ./install.sh --binary "$work/prepull" >/dev/null
[[ -e "$dropin" ]] || fail "a run without --network-logins removed the drop-in"
DESTDIR="$dest" ./install.sh --binary "$work/prepull" --no-network-logins >/dev/null
[[ ! -e "$dest/etc/systemd/system/prepull.service.d" ]] || fail "--no-network-logins left $(ls -R "$dest/etc/systemd/system/prepull.service.d")"
DESTDIR="$dest" ./install.sh --binary "$work/prepull" --network-logins >/dev/null

echo "--- metrics_file outside the default folder gets a drop-in; in it, none"
mdropin="$dest/etc/systemd/system/prepull.service.d/metrics-file.conf"
cp "$dest/etc/prepull/config.yaml" "$work/config.saved"
echo 'metrics_file: "/srv/metrics/prepull.prom" # elsewhere' >>"$dest/etc/prepull/config.yaml"
DESTDIR="$dest" ./install.sh --binary "$work/prepull" >/dev/null
want_mode "$dest/srv/metrics" 755
want_mode "$mdropin" 644
grep -qx 'ReadWritePaths=-/srv/metrics' "$mdropin" || fail "the metrics drop-in does not let the unit write /srv/metrics: $(cat "$mdropin")"
rm -rf "$work/verify" && mkdir -p "$work/verify/prepull.service.d"
cp "$work/prepull.service" "$work/verify/prepull.service"
cp "$mdropin" "$work/verify/prepull.service.d/"
out="$(systemd-analyze verify "$work/verify/prepull.service" 2>&1)" || fail "systemd-analyze verify with the metrics drop-in failed: $out"
[[ -z "$out" ]] || fail "systemd-analyze verify with the metrics drop-in: $out"
cp "$work/config.saved" "$dest/etc/prepull/config.yaml"
echo 'metrics_file: /var/lib/prometheus/node-exporter/prepull.prom' >>"$dest/etc/prepull/config.yaml"
DESTDIR="$dest" ./install.sh --binary "$work/prepull" >/dev/null
[[ ! -e "$mdropin" ]] || fail "the metrics drop-in stayed with metrics_file in the unit's own folder"
[[ -e "$dropin" ]] || fail "removing the metrics drop-in removed the network drop-in"
want_mode "$dest/var/lib/prometheus/node-exporter" 755
echo 'metrics_file: /srv/a b/prepull.prom' >>"$dest/etc/prepull/config.yaml"
DESTDIR="$dest" ./install.sh --binary "$work/prepull" >/dev/null 2>&1 && fail "a metrics_file folder with a space was accepted"
cp "$work/config.saved" "$dest/etc/prepull/config.yaml"

echo "--- building without --binary"
if command -v go >/dev/null; then
  DESTDIR="$work/built" ./install.sh >/dev/null
  "$work/built/usr/local/bin/prepull" --version >/dev/null || fail "the built binary does not run"
fi

echo "--- --uninstall keeps configuration and state"
touch "$dest/var/lib/prepull/state.json"
DESTDIR="$dest" ./install.sh --uninstall >/dev/null
[[ ! -e "$dest/usr/local/bin/prepull" ]] || fail "--uninstall left the binary"
[[ ! -e "$dest/usr/share/bash-completion/completions/prepull" ]] || fail "--uninstall left the bash completion"
[[ ! -e "$dest/etc/systemd/system/prepull.service" ]] || fail "--uninstall left the unit"
[[ ! -e "$dest/etc/systemd/system/prepull.service.d" ]] || fail "--uninstall left the network drop-in"
[[ -z "$(ls "$dest/usr/local/share/man/man1")" ]] || fail "--uninstall left man pages: $(ls "$dest/usr/local/share/man/man1")"
[[ -e "$dest/etc/prepull/config.yaml" ]] || fail "--uninstall removed the configuration"
[[ -e "$dest/var/lib/prepull/state.json" ]] || fail "--uninstall removed the state"
DESTDIR="$dest" ./install.sh --uninstall >/dev/null || fail "a second --uninstall failed"

echo "--- --uninstall --purge removes everything"
DESTDIR="$dest" ./install.sh --binary "$work/prepull" >/dev/null
DESTDIR="$dest" ./install.sh --uninstall --purge >/dev/null
for p in usr/local/bin/prepull usr/share/bash-completion/completions/prepull etc/systemd/system/prepull.service etc/prepull var/lib/prepull; do
  [[ ! -e "$dest/$p" ]] || fail "--purge left $p"
done

[[ ! -e "$work/systemctl.calls" ]] || fail "systemctl was called under DESTDIR: $(cat "$work/systemctl.calls")"

if ((fails > 0)); then
  echo "install.sh: $fails checks failed" >&2
  exit 1
fi
echo "install.sh: all checks passed"
