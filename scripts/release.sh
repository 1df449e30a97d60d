#!/usr/bin/env bash
# release.sh VERSION: builds prepull for every target (lib.sh's TARGETS) and
# writes dist/ (or $DIST): one archive per target, .tar.gz, or .zip for
# Windows, holding the binary, README.md, LICENSE when there is one and the
# man pages; Linux archives add install.sh, systemd/ and configs/, so that
# install.sh installs the binary beside it with no Go and no checkout. Then
# SHA256SUMS over the archives.
#
# Reproducible: the same commit gives the same bytes. Time comes from the
# commit ($SOURCE_DATE_EPOCH when set); builds are -trimpath with no build
# id; archive members have fixed mtimes, owners and modes, in sorted order.
# scripts/test.sh builds twice and compares.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
source scripts/lib.sh

die() {
  printf 'release.sh: %s\n' "$*" >&2
  exit 1
}

[[ $# -eq 1 && -n "$1" && "$1" != -* ]] || die "usage: scripts/release.sh VERSION (e.g. 1.4.0)"
version="$1"
[[ "$version" =~ ^[A-Za-z0-9][A-Za-z0-9._+-]*$ ]] || die "VERSION $version: use letters, digits and . _ + - only"
dist="${DIST:-dist}"
commit="$(git rev-parse HEAD 2>/dev/null)" || die "not a git checkout: the release is stamped with its commit"
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}"
[[ "$SOURCE_DATE_EPOCH" =~ ^[0-9]+$ ]] || die "SOURCE_DATE_EPOCH $SOURCE_DATE_EPOCH: not a number of seconds"
date="$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)"
if [[ -n "$(git status --porcelain --untracked-files=no)" ]]; then
  printf 'release.sh: warning: the checkout has uncommitted changes: this release is not %s as committed\n' "$commit" >&2
fi

# The zip format stores local time: UTC makes it the same everywhere.
export TZ=UTC LC_ALL=C
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT INT TERM
rm -rf "$dist"
mkdir -p "$dist"
dist="$(cd "$dist" && pwd)"

pkg=github.com/prepull/prepull/internal/cli
ldflags="-s -w -buildid= -X $pkg.Version=$version -X $pkg.Commit=$commit -X $pkg.CommitDate=$date"

for target in "${TARGETS[@]}"; do
  goos="${target%/*}" goarch="${target#*/}"
  name="prepull_${version}_${goos}_${goarch}"
  dir="$work/$name"
  exe=prepull
  [[ "$goos" == windows ]] && exe=prepull.exe
  mkdir -p "$dir/man"
  # -buildvcs=false: the commit is stamped above, and Go's own stamp would
  # differ between a clean and a touched work tree.
  GOOS="$goos" GOARCH="$goarch" CGO_ENABLED=0 go build -trimpath -buildvcs=false \
    -ldflags "$ldflags" -o "$dir/$exe" ./cmd/prepull
  cp README.md "$dir/"
  [[ -f LICENSE ]] && cp LICENSE "$dir/"
  cp docs/man/*.1 "$dir/man/"
  if [[ "$goos" == linux ]]; then
    # install.sh reads docs/man, systemd/ and configs/ beside it.
    mkdir -p "$dir/docs/man" "$dir/configs"
    mv "$dir/man/"*.1 "$dir/docs/man/"
    rmdir "$dir/man"
    cp install.sh "$dir/"
    cp -r systemd "$dir/"
    cp configs/prepull.yaml "$dir/configs/"
  fi
  # Fixed modes and mtimes, whatever the checkout's umask and clock.
  find "$dir" -type d -exec chmod 0755 {} +
  find "$dir" -type f -exec chmod 0644 {} +
  chmod 0755 "$dir/$exe"
  [[ -f "$dir/install.sh" ]] && chmod 0755 "$dir/install.sh"
  find "$dir" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  if [[ "$goos" == windows ]]; then
    (cd "$work" && find "$name" | sort | zip -q -X -D -@ "$dist/$name.zip")
  else
    tar -C "$work" --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
      --format=gnu -cf - "$name" | gzip -n -9 >"$dist/$name.tar.gz"
  fi
  echo "built $dist/$name"
done

(cd "$dist" && sha256sum -- *.tar.gz *.zip >SHA256SUMS)
echo "wrote $dist/SHA256SUMS (prepull $version, commit ${commit:0:12}, $date)"
