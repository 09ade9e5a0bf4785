package verity

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sxb-build/sxb/internal/testenv"
)

func openssl(t *testing.T, dir string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("openssl", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func newKeyPair(t *testing.T, dir, kind string) (keyFile, certFile string) {
	t.Helper()
	keyFile, certFile = filepath.Join(dir, kind+".key"), filepath.Join(dir, kind+".crt")
	args := []string{"req", "-x509", "-nodes", "-days", "30", "-subj", "/CN=sxb test " + kind, "-keyout", keyFile, "-out", certFile}
	switch kind {
	case "rsa":
		args = append(args, "-newkey", "rsa:2048")
	case "ec":
		args = append(args, "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1")
	case "rsa-traditional":
		args = append(args, "-newkey", "rsa:2048")
	}
	openssl(t, dir, args...)
	if kind == "rsa-traditional" {
		openssl(t, dir, "rsa", "-in", keyFile, "-traditional", "-out", keyFile)
	}
	if kind == "ec" {
		// SEC 1 "EC PRIVATE KEY" form as well as PKCS#8 must load.
		openssl(t, dir, "ec", "-in", keyFile, "-out", keyFile+".sec1")
	}
	return keyFile, certFile
}

// TestSignatureVerifiesWithOpenSSL signs a root hash with RSA and ECDSA
// keys and has `openssl smime -verify` check the detached signature.
func TestSignatureVerifiesWithOpenSSL(t *testing.T) {
	testenv.NeedTool(t, "openssl")
	dir := t.TempDir()
	root, _ := hex.DecodeString("830984f26cc6e39f0d5b232aa56b02b5319ac4fef5c3d5727037ecdccc6274b5")
	for _, kind := range []string{"rsa", "ec", "rsa-traditional"} {
		t.Run(kind, func(t *testing.T) {
			keyFile, certFile := newKeyPair(t, dir, kind)
			key, cert, err := LoadKeyPair(keyFile, certFile)
			if err != nil {
				t.Fatal(err)
			}
			doc, err := SignatureJSON(root, key, cert)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(doc, []byte(`{"rootHash":"830984f2`)) || !bytes.Contains(doc, []byte(`","certificateFingerprint":"`)) {
				t.Fatalf("unexpected document %s", doc)
			}
			d, der, err := ParseSignature(doc)
			if err != nil {
				t.Fatal(err)
			}
			sigFile, contentFile := filepath.Join(dir, kind+".p7s"), filepath.Join(dir, kind+".roothash")
			os.WriteFile(sigFile, der, 0o644)
			os.WriteFile(contentFile, []byte(d.RootHash), 0o644)
			openssl(t, dir, "smime", "-verify", "-binary", "-inform", "DER", "-content", contentFile, "-in", sigFile, "-CAfile", certFile, "-out", os.DevNull)
			openssl(t, dir, "smime", "-verify", "-binary", "-inform", "DER", "-content", contentFile, "-in", sigFile, "-noverify", "-certfile", certFile, "-out", os.DevNull)
			fp := openssl(t, dir, "x509", "-in", certFile, "-noout", "-fingerprint", "-sha256")
			wantFP := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(strings.SplitN(string(fp), "=", 2)[1]), ":", ""))
			if d.CertificateFingerprint != wantFP {
				t.Errorf("fingerprint %s, openssl says %s", d.CertificateFingerprint, wantFP)
			}
			padded, err := PadSignature(doc, 16384)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := CheckSignature(padded, root); err != nil {
				t.Fatalf("CheckSignature: %v", err)
			}
			other := append([]byte(nil), root...)
			other[31] ^= 1
			if _, err := CheckSignature(padded, other); err == nil {
				t.Error("signature accepted for another root hash")
			}
			// A document whose rootHash was edited must fail the PKCS#7 check.
			forged := bytes.Replace(padded, []byte(d.RootHash), []byte(hex.EncodeToString(other)), 1)
			if _, err := CheckSignature(forged, nil); err == nil {
				t.Error("forged rootHash accepted")
			}
			if kind == "ec" {
				if _, err := ParsePrivateKey(mustRead(t, keyFile+".sec1")); err != nil {
					t.Errorf("SEC 1 EC key: %v", err)
				}
			}
		})
	}
}

// TestRSASignatureMatchesOpenSSL checks that our DER equals what OpenSSL's
// PKCS7_sign writes with -noattr (RSA PKCS#1 v1.5 is deterministic), and
// that a signature with signed attributes (OpenSSL's default) verifies.
func TestRSASignatureMatchesOpenSSL(t *testing.T) {
	testenv.NeedTool(t, "openssl")
	dir := t.TempDir()
	keyFile, certFile := newKeyPair(t, dir, "rsa")
	content := filepath.Join(dir, "content")
	os.WriteFile(content, []byte("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"), 0o644)
	want := filepath.Join(dir, "want.p7s")
	openssl(t, dir, "smime", "-sign", "-binary", "-noattr", "-md", "sha256", "-outform", "DER", "-signer", certFile, "-inkey", keyFile, "-in", content, "-out", want)
	key, cert, err := LoadKeyPair(keyFile, certFile)
	if err != nil {
		t.Fatal(err)
	}
	got, err := SignPKCS7(mustRead(t, content), key, cert)
	if err != nil {
		t.Fatal(err)
	}
	if w := mustRead(t, want); !bytes.Equal(got, w) {
		t.Fatalf("DER differs from openssl's:\n got %s\nwant %s", base64.StdEncoding.EncodeToString(got), base64.StdEncoding.EncodeToString(w))
	}
	withAttrs := filepath.Join(dir, "attrs.p7s")
	openssl(t, dir, "smime", "-sign", "-binary", "-md", "sha256", "-outform", "DER", "-signer", certFile, "-inkey", keyFile, "-in", content, "-out", withAttrs)
	if _, err := VerifyPKCS7(mustRead(t, withAttrs), mustRead(t, content)); err != nil {
		t.Fatalf("signature with attributes: %v", err)
	}
	if _, err := VerifyPKCS7(mustRead(t, withAttrs), []byte("other")); err == nil {
		t.Fatal("signature with attributes verified other content")
	}
}

func TestLoadKeyPairMismatch(t *testing.T) {
	testenv.NeedTool(t, "openssl")
	dir := t.TempDir()
	k1, _ := newKeyPair(t, dir, "rsa")
	_, c2 := newKeyPair(t, dir, "ec")
	if _, _, err := LoadKeyPair(k1, c2); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("mismatched pair: %v", err)
	}
	if _, err := PadSignature(make([]byte, 10), 10); err == nil {
		t.Fatal("oversized document padded")
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
