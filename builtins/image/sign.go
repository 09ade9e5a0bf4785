package image

import (
	"bytes"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/sxb-build/sxb/builtins/inspect"
	"github.com/sxb-build/sxb/builtins/verity"
	"github.com/sxb-build/sxb/internal/atomicfile"
)

// Signer returns the signature document (verity.SignatureJSON or
// verity.JoinSignature) for a root hash.
type Signer func(rootHash []byte) ([]byte, error)

// JoinResult describes a signature joined into an image.
type JoinResult struct {
	// RootHash is the root hash that was signed, lower-case hex.
	RootHash string
	// Partition is the number of the signature partition written.
	Partition int
}

// JoinSignature fills the reserved verity signature partition of the image
// in (written with Verity "defer") with the document sign returns for its
// root hash, and writes the result to out (which may be in; it is replaced
// atomically, never written in place: a published image shares its inode
// with the build cache). The image must hold exactly one verity group whose
// hash tree checks out and whose signature partition is still empty,
// unless replace is set. The result is byte-identical to the image built
// with Verity "signed" and the same signature.
func JoinSignature(in, out string, replace bool, sign Signer) (*JoinResult, error) {
	rep, err := inspect.Inspect(in, inspect.Options{})
	if err != nil {
		return nil, err
	}
	var groups []inspect.VerityCheck
	for _, v := range rep.Verity {
		if v.Signature >= 0 {
			groups = append(groups, v)
		}
	}
	switch {
	case len(groups) == 0:
		return nil, fmt.Errorf("%s has no verity signature partition (build it with verity = \"defer\")", in)
	case len(groups) > 1:
		return nil, fmt.Errorf("%s has %d verity signature partitions; sxb joins one", in, len(groups))
	}
	g := groups[0]
	if !g.Verified {
		return nil, fmt.Errorf("%s: the verity hash tree does not check out: %s", in, g.Error)
	}
	sp := rep.Partitions[g.Signature]
	f, err := os.Open(in)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	old := make([]byte, sp.Size)
	if _, err := f.ReadAt(old, sp.Offset); err != nil {
		return nil, fmt.Errorf("reading the signature partition: %w", err)
	}
	if !replace && len(bytes.Trim(old, "\x00")) > 0 {
		return nil, fmt.Errorf("%s is already signed (partition %d holds a signature); pass --force to replace it", in, sp.Number)
	}
	root, err := hex.DecodeString(g.RootHash)
	if err != nil {
		return nil, fmt.Errorf("root hash %q is not hex", g.RootHash)
	}
	doc, err := sign(root)
	if err != nil {
		return nil, err
	}
	padded, err := verity.PadSignature(doc, int(sp.Size))
	if err != nil {
		return nil, err
	}
	err = atomicfile.WriteFunc(out, 0o644, func(w io.Writer) error {
		if _, err := io.Copy(w, io.NewSectionReader(f, 0, sp.Offset)); err != nil {
			return err
		}
		if _, err := w.Write(padded); err != nil {
			return err
		}
		_, err := io.Copy(w, io.NewSectionReader(f, sp.Offset+sp.Size, rep.Size-sp.Offset-sp.Size))
		return err
	})
	if err != nil {
		return nil, err
	}
	return &JoinResult{RootHash: g.RootHash, Partition: sp.Number}, nil
}

// KeySigner signs root hashes with a PEM key and certificate, as a build
// with Verity "signed" does.
func KeySigner(keyFile, certFile string) (Signer, error) {
	key, cert, err := verity.LoadKeyPair(keyFile, certFile)
	if err != nil {
		return nil, err
	}
	return func(root []byte) ([]byte, error) { return verity.SignatureJSON(root, key, cert) }, nil
}

// DetachedSigner joins a detached PKCS#7 signature made elsewhere; when
// trusted is set, the signer must be that certificate.
func DetachedSigner(sigFile string, trusted *x509.Certificate) (Signer, error) {
	sig, err := os.ReadFile(sigFile)
	if err != nil {
		return nil, fmt.Errorf("reading signature: %w", err)
	}
	return func(root []byte) ([]byte, error) {
		doc, cert, err := verity.JoinSignature(root, sig)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", sigFile, err)
		}
		if trusted != nil && !bytes.Equal(cert.Raw, trusted.Raw) {
			return nil, errors.New(sigFile + ": signed by " + cert.Subject.String() + ", not by the given certificate")
		}
		return doc, nil
	}, nil
}
