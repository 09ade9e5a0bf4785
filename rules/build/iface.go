package build

import (
	"context"

	"github.com/sxb-build/sxb/builtins/deb"
	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/internal/arch"
	"github.com/sxb-build/sxb/rules"
)

// Package is one resolved package, as it enters action keys and manifests.
type Package struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Arch    string `json:"arch"`
	Source  string `json:"source,omitempty"`
	URL     string `json:"url,omitempty"`
	SHA256  string `json:"sha256"`
	Size    int64  `json:"size"`
}

// InstallRequest asks an Installer for a package set.
type InstallRequest struct {
	Distribution, Release, Mirror string
	Architecture                  arch.Arch
	Repositories, Packages        []string
	WithRecommends                bool
	// BaseImage adds what a distribution's minimal base needs (Essential
	// and required packages for Debian).
	BaseImage bool
	// BaseRoot is a tree whose installed packages satisfy dependencies.
	BaseRoot string
	// BaseDB, when set, is read instead of BaseRoot for the installed
	// packages: for an extension on an extension, a tree holding the
	// package databases of the base and of every extension in between
	// (with stand-ins of their files where file dependencies need them).
	BaseDB  string
	Keyring string
	// AptSources are more apt repositories; NoDefaultSources reads only
	// them (Debian and Ubuntu).
	AptSources       []deb.Source
	NoDefaultSources bool
	// RepoKeys are more key files trusted for the repositories (rpm).
	RepoKeys []string
	// KeyringDir is a pacman keyring directory used instead of the
	// host's (Arch).
	KeyringDir string
	// AptPins are apt preferences (Debian and Ubuntu).
	AptPins  []deb.Pin
	CacheDir string
	// Pin, when not empty, is a pin an Installer made earlier (Installer.Pin):
	// Resolve must then return exactly its packages, without the network.
	Pin []byte
}

// Resolved is what Installer.Resolve returns: opaque to the executor apart
// from its package list.
type Resolved interface {
	Packages() []Package
}

// InstallOptions adjust Installer.Install.
type InstallOptions struct {
	// WithDocs keeps documentation.
	WithDocs bool
	// Scripts runs the packages' maintainer scripts and triggers in the
	// sandbox, where the installer can; otherwise native stand-ins apply.
	Scripts bool
	// BaseRoot is the base tree an extension is installed over (the
	// scripts' lower layer).
	BaseRoot string
	// Epoch is SOURCE_DATE_EPOCH, which scripts see.
	Epoch int64
	// Report receives steps; Warn warnings.
	Report func(step, detail string)
	Warn   func(string)
}

// InstallReport tells what Install did besides writing the tree.
type InstallReport struct {
	// ScriptsNotRun lists the scripts and triggers that did not run
	// (scripts off, or nothing could execute them), for the manifest.
	ScriptsNotRun []string `json:"scripts_not_run,omitempty"`
}

// Installer installs distribution packages into a tree without root.
type Installer interface {
	Resolve(ctx context.Context, req InstallRequest, report func(step, detail string)) (Resolved, error)
	Install(ctx context.Context, r Resolved, root string, meta *tree.Meta, opts InstallOptions) (*InstallReport, error)
	// ScriptRunner says how the packages' scripts of architecture a run
	// here: "native", the binfmt_misc emulator, or "" when they cannot
	// (then Install uses native stand-ins). It enters action keys.
	ScriptRunner(a arch.Arch) string
	// Pin returns a serialized form of r that InstallRequest.Pin accepts,
	// or nil when the installer cannot pin (then every build resolves).
	Pin(r Resolved) ([]byte, error)
}

// ImageRequest asks for an extension image to be written.
type ImageRequest struct {
	// Kind is "sysext" or "confext".
	Kind string
	Root *tree.Node
	// Partitions is the layout; empty means the default for Kind, Format
	// and Verity.
	Partitions  []rules.Partition
	Format      string
	Compression string
	Verity      string
	Key, Cert   string
	// Architecture picks the partition types.
	Architecture arch.Arch
	// Seed derives every UUID, as systemd-repart's --seed.
	Seed [16]byte
	// Epoch is SOURCE_DATE_EPOCH, for time stamps in file systems.
	Epoch int64
}

// ImageResult describes a written image.
type ImageResult struct {
	RootHash   string `json:"root_hash,omitempty"`
	Partitions any    `json:"partitions,omitempty"`
}

// ImageWriter writes an image to the file out.
type ImageWriter func(ctx context.Context, out string, req ImageRequest) (*ImageResult, error)
