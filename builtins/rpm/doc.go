// Package rpm installs packages from rpm-md repositories (openSUSE
// Tumbleweed and Leap, Fedora) natively: no zypper, dnf or rpm on the build
// machine, and no root.
//
// # Repositories
//
// Resolve reads repodata/repomd.xml of every repository, then primary.xml
// (gzip, xz or zstd, whichever repomd.xml names) after checking it against
// the checksum in repomd.xml; filelists.xml is read only when a file
// dependency is not satisfied from primary.xml, and then only the paths
// that dependencies name are kept. Parsed metadata is cached as gob under
// CacheDir/rpm-md, keyed by the verified checksum.
//
// Default repositories (Request.Mirror replaces the host part; file://
// URLs and absolute paths name local mirrors with the same layout):
//
//	opensuse tumbleweed  https://download.opensuse.org/tumbleweed/repo/oss/        (oss)
//	                     https://download.opensuse.org/update/tumbleweed/          (update)
//	  other arches:      https://download.opensuse.org/ports/<arch>/tumbleweed/repo/oss/
//	opensuse leap-15.6   .../distribution/leap/15.6/repo/oss/                      (oss)
//	                     .../update/leap/15.6/oss/, .../sle/, .../backports/       (update, sle, backports)
//	fedora 41            https://dl.fedoraproject.org/pub/fedora/linux/releases/41/Everything/<arch>/os/ (release)
//	                     https://dl.fedoraproject.org/pub/fedora/linux/updates/41/Everything/<arch>/     (updates)
//	fedora rawhide       .../fedora/linux/development/rawhide/Everything/<arch>/os/
//
// Request.Repositories selects among them by name and/or adds repository
// URLs. Metalinks and mirror lists are not used.
//
// # Trust
//
// openSUSE signs repomd.xml: its detached signature repomd.xml.asc must
// verify against the keyring, and every file is then checked by checksum
// down the chain (repomd.xml → primary.xml → sha256 of each rpm). A
// missing or bad signature is an error.
//
// Fedora does not sign repomd.xml. For Distribution "fedora" an unsigned
// repomd.xml is accepted, and instead Install checks every package's
// header signature (RSA or EdDSA, header-only as rpm 4.18+ writes them, or
// header+payload) against the keyring; the header signature covers the
// payload digest. Unsigned packages, or packages signed by a key not in
// the keyring, are refused. A signed repomd.xml is still verified when
// present.
//
// The keyring is Request.Keyring (a file or a directory of armored or
// binary OpenPGP public keys) or, by default, the distribution's keys on
// the host: /usr/share/distribution-gpg-keys/opensuse/ or
// /usr/lib/rpm/gnupg/keys/ for openSUSE;
// /usr/share/distribution-gpg-keys/fedora/RPM-GPG-KEY-fedora-<release>-primary
// or /etc/pki/rpm-gpg/RPM-GPG-KEY-fedora-<release>-<arch> for Fedora.
// Request.Insecure turns every signature check off (checksums stay).
//
// # Resolution
//
// The resolver follows Requires (including rich/boolean dependencies:
// and, or, if, else, unless, with, without), file dependencies, versioned
// dependencies with rpm's exact version comparison (Vercmp, including "~"
// and "^"), Conflicts (plain and rich), and Obsoletes (by package name, as
// libsolv does by default). rpmlib(...) dependencies are satisfied when
// rpmlibCaps lists them (rpm 4.18's features; sxb unpacks payloads itself)
// and checked again from each package header at install. Recommends are
// followed only with WithRecommends, which also adds packages whose
// Supplements hold for the selection (as libsolv with weak dependencies);
// Suggests and Enhances never pull packages in.
//
// Decisions follow libsolv's order and policy: plain requirements with a
// single candidate name are closed first; then pending alternatives ("or"
// dependencies, capabilities several package names provide) are decided
// one at a time; conditional requirements (if/unless) last, so that a
// choice is not made before something else settles it. Among candidates:
// the highest EVR per name (first repository on ties); names whose best
// version another candidate obsoletes go last; names recommended by a
// selected package or supplementing the selection go first, then
// suggested or enhancing ones; otherwise the alphabetically first name
// wins (even over a package named like the capability). A conflict
// "(A unless B)" is lifted by installing B. The resolver is greedy with
// local backtracking over alternatives, not a SAT solver; the tests
// cross-check its results with dnf (libsolv) on the same repositories.
//
// With a BaseRoot, packages recorded there (InstalledDBPath) and files
// present there satisfy dependencies and are not installed again; a
// requested package the base has is skipped. Packages whose name the base
// already has in another version are not installed over it.
//
// # Installation
//
// Install downloads in parallel into the shared content-addressed cache
// (builtins/fetch), checks sizes and SHA-256 from primary.xml, and
// unpacks cpio payloads (zstd, xz, gzip, bzip2) as an ordinary user: the
// real modes (setuid included), owners, mtimes and file capabilities
// (security.capability, struct vfs_cap_data revision 2) go to *tree.Meta;
// owner names map to ids through the tree's etc/passwd and etc/group (then
// InstallOptions.BaseRoot's), "root", "bin" and "daemon" are well known,
// and unknown names fall back to root with a warning, as rpm does.
// %ghost files are not created, %doc files only with WithDocs; hard links
// stay hard links; file names that would leave the root are refused, and
// every write goes through tree.Root, so symlinks in the tree (merged /usr)
// are followed but confined. With InstallOptions.Scripts, scriptlets and
// triggers then run in the sandbox (scriptplan.go says in which order,
// scripts.go how). The installed set is written to InstalledDBPath (sxb's
// own JSON record, with each package's triggers; no rpm database is
// created) and the packages' file lists to FileListsPath.
package rpm
