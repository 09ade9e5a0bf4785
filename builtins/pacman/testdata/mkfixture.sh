#!/usr/bin/env bash
# mkfixture.sh OUT builds the signed Arch repositories builtins/pacman's
# tests install from, laid out like an Arch mirror:
#
#   OUT/mirror/{core,extra}/os/x86_64/   packages, .sig files, <repo>.db
#   OUT/keyrings/fixture.gpg, -trusted, -revoked
#                                        a pacman keyring directory: three
#                                        master keys; the packager key
#                                        (certified by all three), a weak key
#                                        (two) and a revoked-listed key
#   OUT/packager.gpg                     the packager's public key alone
#   OUT/stranger.gpg                     a key no keyring trusts
#   OUT/gnupg                            the secret keys (GNUPGHOME)
#   OUT/pacman.conf, OUT/pacman-gnupg    pacman's configuration and keyring
#                                        (pacman-key --init, --add, --lsign-key
#                                        of the masters, owner trust, revoked
#                                        key disabled: what --populate does)
#   OUT/fingerprints                     name=fingerprint per key
#
# core's packages are signed before repo-add (the database carries
# %PGPSIG%) and core.db is signed; extra's are signed after (pacman
# downloads the .sig files) and extra.db is not.
#
# makepkg refuses to run as root: packages are built as nobody.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(mkdir -p "$1" && cd "$1" && pwd)
cd "$out"
step() { echo "mkfixture: $(date +%T) $*"; }
export GNUPGHOME=$out/gnupg SOURCE_DATE_EPOCH=1700000000 LC_ALL=C
mkdir -m 700 -p "$GNUPGHOME"
gpg=(gpg --batch --quiet --pinentry-mode loopback --passphrase '')

key() { # key NAME -> prints the fingerprint of a new signing key
	"${gpg[@]}" --quick-gen-key "Fixture $1 <$1@fixture.invalid>" ed25519 sign never 2>/dev/null
	gpg --list-keys --with-colons "$1@fixture.invalid" | awk -F: '$1 == "fpr" { print $10; exit }'
}
certify() { # certify MASTER KEY
	"${gpg[@]}" --yes --default-key "$1" --quick-sign-key "$2" >/dev/null 2>&1
}
step keys
declare -A fpr
for k in master1 master2 master3 packager weak revoked stranger; do
	fpr[$k]=$(key $k)
	echo "$k=${fpr[$k]}" >>"$out/fingerprints"
done
for m in master1 master2 master3; do
	certify "${fpr[$m]}" "${fpr[packager]}"
	certify "${fpr[$m]}" "${fpr[revoked]}"
done
certify "${fpr[master1]}" "${fpr[weak]}"
certify "${fpr[master2]}" "${fpr[weak]}"

mkdir -p "$out/keyrings"
gpg --export "${fpr[master1]}" "${fpr[master2]}" "${fpr[master3]}" "${fpr[packager]}" "${fpr[weak]}" "${fpr[revoked]}" >"$out/keyrings/fixture.gpg"
printf '%s:4:\n' "${fpr[master1]}" "${fpr[master2]}" "${fpr[master3]}" >"$out/keyrings/fixture-trusted"
printf '%s\n' "${fpr[revoked]}" >"$out/keyrings/fixture-revoked"
gpg --export "${fpr[packager]}" >"$out/packager.gpg"
gpg --export "${fpr[stranger]}" >"$out/stranger.gpg"

# Build every PKGBUILD of pkgbuild/ as nobody, in one shell (makepkg's
# fakeroot phase is slow: split packages keep the runs few). A PKGBUILD's
# "# pkgext" line names the package compression, "# repos" where each of
# its packages goes.
build=$out/build
mkdir -p "$build"
cat >"$build/makepkg.conf" <<'CONF'
source /etc/makepkg.conf
OPTIONS=(!strip docs !libtool !staticlibs emptydirs !zipman !purge !debug !lto)
BUILDENV=(!distcc !color !ccache !check !sign)
CONF
for f in "$here"/pkgbuild/*; do
	[[ $f == *.install ]] && continue
	d=$build/$(basename "$f")
	mkdir -p "$d"
	cp "$f" "$d/PKGBUILD"
	cp "$here"/pkgbuild/*.install "$d/"
done
# makepkg's output depends on the PKGBUILD, the install files it names,
# the configuration and the time stamp only: packages built before are
# kept in $cache (beside OUT, or $SXB_PACMAN_PKGCACHE) under a hash of
# those, so that changing one PKGBUILD rebuilds that one alone.
cache=${SXB_PACMAN_PKGCACHE:-$(dirname "$out")/sxb-pacman-pkgcache}
pkgkey() { # pkgkey DIR
	{
		cat "$1/PKGBUILD" "$build/makepkg.conf"
		for i in $(sed -n 's/^ *install=//p' "$1/PKGBUILD"); do cat "$here/pkgbuild/$i"; done
		echo "$SOURCE_DATE_EPOCH"
	} | sha256sum | cut -c1-32
}
for d in "$build"/*/; do
	c=$cache/$(pkgkey "$d")
	if [[ -d $c ]]; then
		cp "$c"/*.pkg.tar.* "$d/" && touch "$d/.cached"
	fi
done
chown -R nobody "$build"
step makepkg
su -s /bin/bash nobody -c '
	set -e
	for d in "'"$build"'"/*/; do
		[[ -e $d/.cached ]] && continue
		ext=$(sed -n "s/^# pkgext //p" "$d/PKGBUILD")
		(cd "$d" && HOME="$d" PKGEXT=$ext SOURCE_DATE_EPOCH='"$SOURCE_DATE_EPOCH"' \
			makepkg --config ../makepkg.conf -f --nodeps >build.log 2>&1) || { cat "$d/build.log"; exit 1; }
	done
'
for d in "$build"/*/; do
	[[ -e $d/.cached ]] && continue
	c=$cache/$(pkgkey "$d")
	mkdir -p "$cache"
	tmp=$(mktemp -d "$c.XXXXXX")
	cp "$d"/*.pkg.tar.* "$tmp/"
	mv -T "$tmp" "$c" 2>/dev/null || rm -rf "$tmp" # another build was first
done
signer() {
	case $1 in
	fx-weak) echo weak ;;
	fx-revoked) echo revoked ;;
	*) echo packager ;;
	esac
}
for d in "$build"/*/; do
	for m in $(sed -n "s/^# repos //p" "$d/PKGBUILD"); do
		name=${m%=*} repo=${m#*=}
		dest=$out/mirror/$repo/os/x86_64
		mkdir -p "$dest"
		for p in "$d/$name"-[0-9]*.pkg.tar.*; do
			mv "$p" "$dest/"
			signer "$name" >"$dest/$(basename "$p").signer"
		done
	done
done
sign() { # sign DIR: every package with its signer's key
	for s in "$1"/*.signer; do
		p=${s%.signer}
		"${gpg[@]}" --yes --local-user "${fpr[$(cat "$s")]}" --detach-sign --no-armor "$p"
		rm "$s"
	done
}
sign "$out/mirror/core/os/x86_64"
pkgs() { ls "$1"/*.pkg.tar.* | grep -v -e '\.sig$' -e '\.signer$'; }
repo-add --quiet --sign --key "${fpr[packager]}" "$out/mirror/core/os/x86_64/core.db.tar.gz" $(pkgs "$out/mirror/core/os/x86_64")
repo-add --quiet "$out/mirror/extra/os/x86_64/extra.db.tar.gz" $(pkgs "$out/mirror/extra/os/x86_64")
sign "$out/mirror/extra/os/x86_64"
# repo-add also writes the files databases (<repo>.files).

# pacman's own keyring, as pacman-key --populate would leave it.
step pacman-key
g=$out/pacman-gnupg
pacman-key --gpgdir "$g" --init >/dev/null 2>&1
pacman-key --gpgdir "$g" --add "$out/keyrings/fixture.gpg" >/dev/null 2>&1
for m in master1 master2 master3; do
	pacman-key --gpgdir "$g" --lsign-key "${fpr[$m]}" >/dev/null 2>&1
done
gpg --homedir "$g" --batch --quiet --import-ownertrust "$out/keyrings/fixture-trusted" 2>/dev/null
printf 'disable\nquit\n' | gpg --homedir "$g" --command-fd 0 --no-auto-check-trustdb --quiet --batch --edit-key "${fpr[revoked]}" 2>/dev/null
gpg --homedir "$g" --batch --quiet --check-trustdb >/dev/null 2>&1 || true
gpgconf --homedir "$g" --kill all 2>/dev/null || true
gpgconf --homedir "$GNUPGHOME" --kill all 2>/dev/null || true

rm -rf "$build"

cat >"$out/pacman.conf" <<CONF
[options]
Architecture = x86_64
SigLevel = Required DatabaseOptional
LocalFileSigLevel = Optional

[core]
Server = file://$out/mirror/\$repo/os/\$arch

[extra]
Server = file://$out/mirror/\$repo/os/\$arch
CONF
