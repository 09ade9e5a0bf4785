package verity

import (
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
)

// JoinSignature builds the signature document for rootHash from a detached
// PKCS#7 signature made elsewhere (DER, or PEM "PKCS7"), e.g. by `openssl
// smime -sign -binary -noattr -outform der` over the lower-case hex root
// hash without a newline — what systemd-repart --join-signature takes. The
// signature must verify over that string and embed its certificate. It
// returns the compact JSON document, formatted as SignatureJSON formats it,
// and the signer's certificate.
func JoinSignature(rootHash, sig []byte) ([]byte, *x509.Certificate, error) {
	if blk, _ := pem.Decode(sig); blk != nil {
		sig = blk.Bytes
	}
	hexRoot := hex.EncodeToString(rootHash)
	cert, err := VerifyPKCS7(sig, []byte(hexRoot))
	if err != nil {
		return nil, nil, fmt.Errorf("checking the signature over root hash %s: %w", hexRoot, err)
	}
	doc, err := document(hexRoot, sig, cert)
	if err != nil {
		return nil, nil, err
	}
	return doc, cert, nil
}
