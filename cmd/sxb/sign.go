package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/sxb-build/sxb/builtins/image"
	"github.com/sxb-build/sxb/builtins/sysupdate"
	"github.com/sxb-build/sxb/builtins/verity"
	"github.com/sxb-build/sxb/internal/diag"
)

func init() {
	register(&command{
		name:    "sign",
		summary: "join a verity signature into an image built with verity = \"defer\" (sign [flags] IMAGE)",
		run:     runSign,
	})
}

const signUsage = `usage: sxb sign (--signature SIG.p7s [--certificate CERT.pem] | --key KEY.pem --certificate CERT.pem)
                [-o OUT.raw] [--force] [--sign-key RELEASE.asc] IMAGE.raw`

func runSign(ctx context.Context, env *environ, args []string) int {
	fs := pflag.NewFlagSet("sign", pflag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.Usage = func() { fmt.Fprintln(env.stderr, signUsage); fs.PrintDefaults() }
	sigFile := fs.String("signature", "", "detached PKCS#7 signature (DER or PEM) of the hex root hash, made elsewhere")
	keyFile := fs.String("key", "", "PEM private key to sign the root hash with here")
	certFile := fs.String("certificate", "", "PEM certificate: of --key, or the signer --signature must come from")
	output := fs.StringP("output", "o", "", "write the signed image here (default: replace IMAGE)")
	force := fs.Bool("force", false, "replace a signature the image already holds")
	signKey := fs.String("sign-key", "", "OpenPGP secret key re-signing SHA256SUMS beside the image (SHA256SUMS.gpg)")
	if err := fs.Parse(args); err != nil {
		return parseFailed(env, "sign", err)
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(env.stderr, "sxb sign: "+format+"\n", a...)
		fmt.Fprintln(env.stderr, signUsage)
		return exitUsage
	}
	switch {
	case fs.NArg() != 1:
		return usageErr("want one IMAGE, got %d arguments", fs.NArg())
	case *sigFile != "" && *keyFile != "":
		return usageErr("--signature and --key exclude each other: join a signature made elsewhere, or sign here")
	case *sigFile == "" && *keyFile == "":
		return usageErr("give --signature SIG.p7s, or --key and --certificate")
	case *keyFile != "" && *certFile == "":
		return usageErr("--key needs --certificate")
	}
	fail := func(err error) int {
		diag.RenderError(env.stderr, err, diag.UseColor(env.stderr))
		return exitError
	}
	in := packAbs(env, fs.Arg(0))
	out := in
	if *output != "" {
		out = packAbs(env, *output)
	}
	var signer image.Signer
	var err error
	if *keyFile != "" {
		signer, err = image.KeySigner(packAbs(env, *keyFile), packAbs(env, *certFile))
	} else {
		var trusted []byte
		if *certFile != "" {
			if trusted, err = os.ReadFile(packAbs(env, *certFile)); err != nil {
				return fail(fmt.Errorf("reading certificate: %w", err))
			}
		}
		signer, err = detachedSigner(packAbs(env, *sigFile), trusted)
	}
	if err != nil {
		return fail(err)
	}
	var pgp *sysupdate.SigningKey
	if *signKey != "" {
		if pgp, err = sysupdate.LoadSigningKey(packAbs(env, *signKey), []byte(os.Getenv("SXB_SIGN_PASSPHRASE"))); err != nil {
			return fail(err)
		}
	}
	res, err := image.JoinSignature(in, out, *force, signer)
	if err != nil {
		return fail(err)
	}
	fmt.Fprintf(env.stderr, "sxb sign: signed root hash %s into partition %d of %s\n", res.RootHash, res.Partition, out)
	// The image changed: its line in SHA256SUMS, and the manifest's
	// signature, must follow.
	dir := filepath.Dir(out)
	listed, err := sysupdate.UpdateSum(dir, filepath.Base(out))
	if err != nil {
		return fail(fmt.Errorf("updating SHA256SUMS: %w", err))
	}
	if listed {
		epoch, err := sourceDateEpoch()
		if err != nil {
			return fail(err)
		}
		if pgp == nil {
			if _, err := os.Stat(filepath.Join(dir, sysupdate.SignatureFile)); err == nil {
				fmt.Fprintf(env.stderr, "sxb sign: removed the stale %s (pass --sign-key to sign SHA256SUMS again)\n", sysupdate.SignatureFile)
			}
		}
		if err := sysupdate.SignDir(dir, pgp, epoch); err != nil {
			return fail(err)
		}
	}
	fmt.Fprintln(env.stdout, out)
	return exitOK
}

// detachedSigner joins the signature in sigFile; trusted, when not empty,
// is the PEM certificate the signer must be.
func detachedSigner(sigFile string, trusted []byte) (image.Signer, error) {
	if len(trusted) == 0 {
		return image.DetachedSigner(sigFile, nil)
	}
	cert, err := verity.ParseCertificate(trusted)
	if err != nil {
		return nil, fmt.Errorf("reading certificate: %w", err)
	}
	return image.DetachedSigner(sigFile, cert)
}
