package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/spf13/pflag"

	"github.com/sxb-build/sxb/builtins/inspect"
	"github.com/sxb-build/sxb/builtins/tree"
	"github.com/sxb-build/sxb/builtins/verity"
	"github.com/sxb-build/sxb/internal/diag"
)

func init() {
	register(&command{
		name:    "inspect",
		summary: "show an image's partitions, extension-release and verity state, or extract its files (inspect [--json] [--extract DIR] IMAGE.raw)",
		run:     runInspect,
	})
}

func runInspect(ctx context.Context, env *environ, args []string) int {
	fs := pflag.NewFlagSet("inspect", pflag.ContinueOnError)
	fs.SetOutput(env.stderr)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	certFile := fs.String("certificate", "", "PEM certificate the verity signature must come from")
	extract := fs.String("extract", "", "write the image's files into `DIR` (empty or missing) and their owners, modes, devices and xattrs into DIR.meta.json, instead of the report")
	const usage = "usage: sxb inspect [--json] [--certificate CERT.pem] IMAGE.raw\n       sxb inspect [--json] --extract DIR IMAGE.raw"
	fs.Usage = func() {
		fmt.Fprintln(env.stderr, usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return parseFailed(env, "inspect", err)
	}
	if fs.NArg() != 1 || (*extract != "" && *certFile != "") {
		fmt.Fprintln(env.stderr, usage)
		return exitUsage
	}
	color := diag.UseColor(env.stderr)
	var opts inspect.Options
	if *certFile != "" {
		b, err := os.ReadFile(packAbs(env, *certFile))
		if err == nil {
			opts.Certificate, err = verity.ParseCertificate(b)
		}
		if err != nil {
			diag.RenderError(env.stderr, fmt.Errorf("--certificate: %w", err), color)
			return exitError
		}
	}
	if fi, err := os.Stat(packAbs(env, fs.Arg(0))); err == nil && (fi.IsDir() || fi.Size() == 0) {
		what := "is a directory"
		if !fi.IsDir() {
			what = "is empty"
		}
		diag.RenderError(env.stderr, fmt.Errorf("inspecting image: %s %s, not a disk image (.raw) file", fs.Arg(0), what), color)
		return exitError
	}
	if *extract != "" {
		return runExtract(ctx, env, fs.Arg(0), *extract, *asJSON, color)
	}
	rep, err := inspect.Inspect(packAbs(env, fs.Arg(0)), opts)
	if err != nil {
		diag.RenderError(env.stderr, err, color)
		return exitError
	}
	rep.Image = fs.Arg(0)
	if *asJSON {
		b, _ := json.MarshalIndent(rep, "", "  ")
		fmt.Fprintf(env.stdout, "%s\n", b)
	} else {
		printReport(env, rep)
	}
	for _, v := range rep.Verity {
		if !v.Verified || (v.Signed && !v.SignatureValid) || (v.Trusted != nil && !*v.Trusted) {
			return exitError
		}
	}
	return exitOK
}

// runExtract writes the files of image into dir and their metadata into
// dir.meta.json, where tree.LoadDir (and so sxb's image writers) find it.
func runExtract(ctx context.Context, env *environ, image, dir string, asJSON, color bool) int {
	dest := packAbs(env, dir)
	meta := tree.NewMeta()
	x, err := inspect.Extract(ctx, packAbs(env, image), dest, meta)
	if err == nil {
		err = meta.Save(tree.MetaPath(dest))
	}
	if err != nil {
		diag.RenderError(env.stderr, err, color)
		return exitError
	}
	if asJSON {
		b, _ := json.MarshalIndent(x, "", "  ")
		fmt.Fprintf(env.stdout, "%s\n", b)
		return exitOK
	}
	from := "file system"
	if p := x.Partition; p != nil {
		from = fmt.Sprintf("partition %d (%s)", p.Number, p.Type)
	}
	fmt.Fprintf(env.stdout, "extracted %s %s into %s: %d files, %d directories, %d symlinks, %d hard links, %d special files, %d bytes\n",
		x.FS, from, filepath.Join(dir, strings.TrimPrefix(x.Dir, dest)), x.Files, x.Dirs, x.Symlinks, x.HardLinks, x.Special, x.Bytes)
	fmt.Fprintf(env.stdout, "metadata (owners, modes, devices, xattrs): %s\n", tree.MetaPath(dir))
	return exitOK
}

// printable escapes control characters (and invalid UTF-8) that an image
// may carry in labels or its extension-release file, so that inspecting a
// hostile image cannot drive the terminal.
func printable(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			fmt.Fprintf(&b, "\\x%02x", s[i])
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			fmt.Fprintf(&b, "\\x%02x", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func printReport(env *environ, rep *inspect.Report) {
	w := env.stdout
	fmt.Fprintf(w, "image:     %s (%d bytes)\ndisk uuid: %s\n\n", rep.Image, rep.Size, rep.DiskUUID)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tTYPE\tLABEL\tUUID\tOFFSET\tSIZE\tCONTENT\tFLAGS")
	for _, p := range rep.Partitions {
		content := p.Content
		if content == "" {
			content = "-"
		}
		flags := strings.Join(p.Flags, ",")
		if flags == "" {
			flags = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", p.Number, p.Type, printable(p.Label), p.UUID, p.Offset, p.Size, content, flags)
	}
	tw.Flush()
	for _, r := range rep.Releases {
		fmt.Fprintf(w, "\nextension-release (partition %d, %s):\n", r.Partition, printable(r.Path))
		for _, l := range strings.Split(strings.TrimRight(r.Text, "\n"), "\n") {
			fmt.Fprintf(w, "  %s\n", printable(l))
		}
	}
	if len(rep.Releases) == 0 {
		fmt.Fprintln(w, "\nextension-release: none found")
	}
	if len(rep.Verity) == 0 {
		fmt.Fprintln(w, "\nverity: none")
	}
	for _, v := range rep.Verity {
		fmt.Fprintf(w, "\nverity:    root hash %s: ", v.RootHash)
		if v.Verified {
			fmt.Fprintln(w, "verified")
		} else {
			fmt.Fprintf(w, "FAILED: %s\n", v.Error)
		}
		switch {
		case v.Deferred:
			fmt.Fprintln(w, "signature: none yet (partition reserved by verity = \"defer\"; join one with sxb sign)")
		case !v.Signed:
			fmt.Fprintln(w, "signature: none")
		case v.SignatureValid:
			trust := "not checked against a certificate (use --certificate)"
			if v.Trusted != nil && *v.Trusted {
				trust = "trusted"
			} else if v.Trusted != nil {
				trust = "NOT the given certificate"
			}
			fmt.Fprintf(w, "signature: valid, signed by %s, %s\n", v.Signer, trust)
		default:
			fmt.Fprintf(w, "signature: INVALID: %s\n", v.SignatureError)
		}
	}
}
