package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/sxb-build/sxb/builtins/image"
	"github.com/sxb-build/sxb/builtins/repart"
	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/internal/arch"
	"github.com/sxb-build/sxb/internal/atomicfile"
	"github.com/sxb-build/sxb/internal/diag"
	"github.com/sxb-build/sxb/rules"
)

func init() {
	register(&command{
		name:    "pack",
		summary: "turn a directory into an extension image (pack [flags] TREE OUT.raw)",
		run:     runPack,
	})
}

const packUsage = `usage: sxb pack [--kind sysext|confext] [--format erofs|squashfs] [--compression C]
                [--verity off|hash|signed|defer] [--key KEY.pem --certificate CERT.pem]
                [--partitions REPART.D] [--seed UUID|random] [--architecture ARCH] TREE OUT.raw`

func runPack(ctx context.Context, env *environ, args []string) int {
	fs := pflag.NewFlagSet("pack", pflag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.Usage = func() { fmt.Fprintln(env.stderr, packUsage); fs.PrintDefaults() }
	kind := fs.String("kind", "sysext", "extension kind: sysext (/usr, /opt) or confext (/etc)")
	format := fs.String("format", "erofs", "file system: erofs or squashfs")
	compression := fs.String("compression", "", "file-system compression, optionally with a level as ALG,LEVEL (erofs: lz4, lz4hc, lzma, deflate, zstd; squashfs: gzip, xz, zstd, lz4)")
	verityMode := fs.String("verity", "off", "dm-verity: off, hash, signed (needs --key and --certificate), or defer (signature partition reserved for sxb sign)")
	keyFile := fs.String("key", "", "PEM private key signing the verity root hash")
	certFile := fs.String("certificate", "", "PEM certificate of the signing key")
	partDir := fs.String("partitions", "", "directory of repart.d *.conf partition definitions (replaces the default layout)")
	seedArg := fs.String("seed", "", "UUID every partition UUID is derived from, or \"random\" (default: derived from OUT's name)")
	archName := fs.String("architecture", "", "systemd architecture of the root/usr partition types (default: this machine's)")
	if err := fs.Parse(args); err != nil {
		return parseFailed(env, "pack", err)
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(env.stderr, "sxb pack: "+format+"\n", a...)
		fmt.Fprintln(env.stderr, packUsage)
		return exitUsage
	}
	if fs.NArg() != 2 {
		return usageErr("want TREE and OUT.raw, got %d arguments", fs.NArg())
	}
	src, out := packAbs(env, fs.Arg(0)), packAbs(env, fs.Arg(1))
	switch {
	case *kind != "sysext" && *kind != "confext":
		return usageErr("--kind=%s: want sysext or confext", *kind)
	case *format != "erofs" && *format != "squashfs":
		return usageErr("--format=%s: want erofs or squashfs", *format)
	case *verityMode != "off" && *verityMode != "hash" && *verityMode != "signed" && *verityMode != "defer":
		return usageErr("--verity=%s: want off, hash, signed or defer", *verityMode)
	case (*keyFile == "") != (*certFile == ""):
		return usageErr("--key and --certificate go together")
	case *verityMode == "signed" && *keyFile == "" && *partDir == "":
		return usageErr("--verity=signed needs --key and --certificate")
	case *keyFile != "" && *verityMode != "signed" && *partDir == "":
		return usageErr("--key/--certificate sign the verity root hash: add --verity=signed")
	case *partDir != "" && (fs.Changed("kind") || fs.Changed("format") || fs.Changed("verity")):
		return usageErr("--partitions replaces the default layout: drop --kind, --format and --verity")
	}
	imageArch, msg := packArch(*archName)
	if msg != "" {
		return usageErr("--architecture=%s: %s", *archName, msg)
	}
	var seed [16]byte
	switch *seedArg {
	case "":
		sum := sha256.Sum256([]byte("sxb image seed\x00" + strings.TrimSuffix(filepath.Base(out), ".raw")))
		copy(seed[:], sum[:16])
		seed[6], seed[8] = seed[6]&0x0f|0x40, seed[8]&0x3f|0x80
	case "random":
		if _, err := rand.Read(seed[:]); err != nil {
			fmt.Fprintf(env.stderr, "sxb pack: %v\n", err)
			return exitError
		}
	default:
		id, err := repart.ParseID128(*seedArg)
		if err != nil {
			return usageErr("--seed: %v", err)
		}
		seed = id
	}
	color := diag.UseColor(env.stderr)
	fail := func(err error) int {
		diag.RenderError(env.stderr, err, color)
		return exitError
	}
	epoch, err := sourceDateEpoch()
	if err != nil {
		return fail(err)
	}
	var parts []*repart.Partition
	if *partDir != "" {
		if parts, err = repart.ReadDir(packAbs(env, *partDir)); err != nil {
			return fail(err)
		}
	}
	x := &rules.Extension{Name: "pack", Kind: *kind, Format: *format, Compression: *compression, Verity: *verityMode,
		Key: *keyFile, Certificate: *certFile, Architecture: imageArch, Output: "pack"}
	if err := packValidate(x, parts); err != nil {
		var ae *rules.AttrError
		if errors.As(err, &ae) {
			return usageErr("--%s: %s", ae.Attr, ae.Msg)
		}
		return fail(err)
	}
	// As root the tree's owners are kept, as systemd-repart --make-ddi
	// does; rootless, the files are root's (the builder's uid means
	// nothing in the image), and the sidecar says otherwise where needed.
	topts := tree.Options{Epoch: -1, KeepOwner: os.Geteuid() == 0}
	if os.Getenv("SOURCE_DATE_EPOCH") != "" {
		topts.Epoch = epoch
	}
	if fi, err := os.Stat(src); err != nil || !fi.IsDir() {
		if err == nil || errors.Is(err, os.ErrNotExist) {
			err = fmt.Errorf("TREE %s is not a directory", src)
		}
		return fail(err)
	}
	if fi, err := os.Stat(filepath.Dir(out)); err != nil || !fi.IsDir() {
		return fail(fmt.Errorf("%s: the output's directory %s does not exist", out, filepath.Dir(out)))
	}
	root, err := tree.LoadDir(src, topts)
	if err != nil {
		return fail(err)
	}
	res, err := image.Build(ctx, out, root, image.Request{
		Kind: *kind, Format: *format, Verity: *verityMode, Compression: *compression,
		KeyFile: packAbs(env, *keyFile), CertFile: packAbs(env, *certFile), Architecture: imageArch,
		Partitions: parts, Seed: seed, Epoch: epoch,
	})
	if err != nil {
		return fail(err)
	}
	rootHashFile := ""
	if res.RootHash != nil {
		rootHashFile = strings.TrimSuffix(out, ".raw") + ".roothash"
		if err := atomicfile.Write(rootHashFile, []byte(hex.EncodeToString(res.RootHash)+"\n"), 0o644); err != nil {
			return fail(fmt.Errorf("writing root hash: %w", err))
		}
	}
	for _, p := range res.Partitions {
		fmt.Fprintf(env.stderr, "sxb pack: %-24s %-24s %s %8d bytes%s\n", p.Type.Name, p.Label, p.UUID, p.Size, fsNote(p.Format))
	}
	fmt.Fprintln(env.stdout, out)
	if rootHashFile != "" {
		fmt.Fprintln(env.stdout, rootHashFile)
	}
	return exitOK
}

// packArch reads --architecture: "" is the host's (arch.None); else an
// architecture with Discoverable Partitions types, or a usage message.
func packArch(name string) (arch.Arch, string) {
	if name == "" {
		return arch.None, ""
	}
	var dps []string
	for _, a := range repart.Architectures() {
		dps = append(dps, a.Systemd())
	}
	a, err := arch.Parse(name)
	switch {
	case err != nil:
		return arch.None, fmt.Sprintf("unknown (known: %s)", strings.Join(dps, ", "))
	case !slices.Contains(repart.Architectures(), a):
		return arch.None, fmt.Sprintf("no Discoverable Partitions types for %s (known: %s)", a, strings.Join(dps, ", "))
	}
	return a, ""
}

// packValidate checks the image pack is asked for with the rule schema, so
// what the image writer cannot honour is refused before the tree is read.
// parts is the layout of --partitions (nil: the default one); Output is the
// one attribute pack has no use for.
func packValidate(x *rules.Extension, parts []*repart.Partition) error {
	for _, p := range parts {
		x.Partitions = append(x.Partitions, rules.Partition{Pos: p.Pos, File: p.Pos.File})
		if x.Key != "" {
			x.Verity = "signed" // a layout of one's own is signed when a key is given
		}
	}
	return x.Validate()
}

func fsNote(format string) string {
	if format == "" {
		return ""
	}
	return " " + format
}

// packAbs resolves p against the directory sxb was started in; "" stays "".
func packAbs(env *environ, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(env.dir, p)
}
