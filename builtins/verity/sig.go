package verity

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
)

// The PKCS#7 signature is written with encoding/asn1 rather than a library:
// the structure systemd-repart produces (OpenSSL PKCS7_sign with
// PKCS7_DETACHED|PKCS7_NOATTR|PKCS7_BINARY) is small and fixed, writing it
// ourselves keeps the output byte-identical to repart's for RSA keys, and the
// maintained Go PKCS#7 packages either add signed attributes or are archived.

var (
	oidData          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidSignedData    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidSHA256        = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidRSAEncryption = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidECDSAWithSHA2 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidMessageDigest = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	asn1Null         = asn1.RawValue{Tag: asn1.TagNull, FullBytes: []byte{asn1.TagNull, 0}}
)

type algorithmIdentifier struct {
	Algorithm  asn1.ObjectIdentifier
	Parameters asn1.RawValue `asn1:"optional"`
}

type issuerAndSerial struct {
	Issuer asn1.RawValue
	Serial *big.Int
}

type signerInfo struct {
	Version                   int
	IssuerAndSerialNumber     issuerAndSerial
	DigestAlgorithm           algorithmIdentifier
	AuthenticatedAttributes   asn1.RawValue `asn1:"optional,tag:0"`
	DigestEncryptionAlgorithm algorithmIdentifier
	EncryptedDigest           []byte
}

type contentType struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"optional,explicit,tag:0"`
}

type signedData struct {
	Version          int
	DigestAlgorithms []algorithmIdentifier `asn1:"set"`
	ContentInfo      contentType
	Certificates     asn1.RawValue `asn1:"optional,tag:0"`
	CRLs             asn1.RawValue `asn1:"optional,tag:1"`
	SignerInfos      []signerInfo  `asn1:"set"`
}

type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"explicit,tag:0"`
}

// contentInfoOut is contentInfo for encoding: Content carries the [0]
// wrapper itself.
type contentInfoOut struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue
}

// SignPKCS7 returns a DER PKCS#7 SignedData with a detached SHA-256
// signature over content, no signed attributes and cert embedded: what
// OpenSSL's PKCS7_sign(PKCS7_DETACHED|PKCS7_NOATTR|PKCS7_BINARY) writes and
// systemd-repart stores in verity signature partitions. RSA (PKCS#1 v1.5)
// and ECDSA keys are supported.
func SignPKCS7(content []byte, key crypto.Signer, cert *x509.Certificate) ([]byte, error) {
	digest := sha256.Sum256(content)
	var encAlg algorithmIdentifier
	var sig []byte
	var err error
	switch key.Public().(type) {
	case *rsa.PublicKey:
		encAlg = algorithmIdentifier{Algorithm: oidRSAEncryption, Parameters: asn1Null}
		sig, err = key.Sign(rand.Reader, digest[:], crypto.SHA256)
	case *ecdsa.PublicKey:
		encAlg = algorithmIdentifier{Algorithm: oidECDSAWithSHA2}
		sig, err = key.Sign(rand.Reader, digest[:], crypto.SHA256)
	default:
		return nil, fmt.Errorf("signing: unsupported key type %T (want RSA or ECDSA)", key.Public())
	}
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	sd := signedData{
		Version:          1,
		DigestAlgorithms: []algorithmIdentifier{{Algorithm: oidSHA256, Parameters: asn1Null}},
		ContentInfo:      contentType{ContentType: oidData},
		Certificates:     asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: cert.Raw},
		SignerInfos: []signerInfo{{
			Version:                   1,
			IssuerAndSerialNumber:     issuerAndSerial{Issuer: asn1.RawValue{FullBytes: cert.RawIssuer}, Serial: cert.SerialNumber},
			DigestAlgorithm:           algorithmIdentifier{Algorithm: oidSHA256, Parameters: asn1Null},
			DigestEncryptionAlgorithm: encAlg,
			EncryptedDigest:           sig,
		}},
	}
	inner, err := asn1.Marshal(sd)
	if err != nil {
		return nil, fmt.Errorf("encoding signed data: %w", err)
	}
	out, err := asn1.Marshal(contentInfoOut{ContentType: oidSignedData,
		Content: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: inner}})
	if err != nil {
		return nil, fmt.Errorf("encoding content info: %w", err)
	}
	return out, nil
}

// VerifyPKCS7 checks a detached PKCS#7 SignedData signature over content
// and returns the signer's certificate (taken from the signature). It
// checks the signature only; whether the certificate is trusted is the
// caller's decision (compare it with a known one).
func VerifyPKCS7(der, content []byte) (*x509.Certificate, error) {
	var ci contentInfo
	rest, err := asn1.Unmarshal(der, &ci)
	if err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("parsing PKCS#7: not a DER ContentInfo")
	}
	if !ci.ContentType.Equal(oidSignedData) {
		return nil, fmt.Errorf("parsing PKCS#7: content type %v is not signedData", ci.ContentType)
	}
	var sd signedData
	if _, err := asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil {
		return nil, fmt.Errorf("parsing PKCS#7 signed data: %w", err)
	}
	certs, err := x509.ParseCertificates(sd.Certificates.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing PKCS#7 certificates: %w", err)
	}
	if len(sd.SignerInfos) != 1 {
		return nil, fmt.Errorf("parsing PKCS#7: %d signer infos, want 1", len(sd.SignerInfos))
	}
	si := sd.SignerInfos[0]
	if !si.DigestAlgorithm.Algorithm.Equal(oidSHA256) {
		return nil, fmt.Errorf("PKCS#7: unsupported digest algorithm %v", si.DigestAlgorithm.Algorithm)
	}
	var cert *x509.Certificate
	for _, c := range certs {
		if bytes.Equal(c.RawIssuer, si.IssuerAndSerialNumber.Issuer.FullBytes) && c.SerialNumber.Cmp(si.IssuerAndSerialNumber.Serial) == 0 {
			cert = c
		}
	}
	if cert == nil {
		return nil, errors.New("PKCS#7: signer certificate not included")
	}
	digest := sha256.Sum256(content)
	signed := digest[:]
	if len(si.AuthenticatedAttributes.FullBytes) > 0 {
		// With signed attributes the signature covers their DER encoding as
		// a SET, and the messageDigest attribute must match the content.
		var attrs []struct {
			Type   asn1.ObjectIdentifier
			Values asn1.RawValue `asn1:"set"`
		}
		if _, err := asn1.UnmarshalWithParams(si.AuthenticatedAttributes.FullBytes, &attrs, "set,tag:0"); err != nil {
			return nil, fmt.Errorf("parsing PKCS#7 signed attributes: %w", err)
		}
		found := false
		for _, a := range attrs {
			if a.Type.Equal(oidMessageDigest) {
				var md []byte
				if _, err := asn1.Unmarshal(a.Values.Bytes, &md); err != nil || !bytes.Equal(md, digest[:]) {
					return nil, errors.New("PKCS#7: message digest attribute does not match the content")
				}
				found = true
			}
		}
		if !found {
			return nil, errors.New("PKCS#7: signed attributes lack a message digest")
		}
		set := append([]byte(nil), si.AuthenticatedAttributes.FullBytes...)
		set[0] = 0x31 // the signature covers them tagged as a SET
		d := sha256.Sum256(set)
		signed = d[:]
	}
	switch pub := cert.PublicKey.(type) {
	case *rsa.PublicKey:
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, signed, si.EncryptedDigest); err != nil {
			return nil, fmt.Errorf("PKCS#7: bad RSA signature: %w", err)
		}
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(pub, signed, si.EncryptedDigest) {
			return nil, errors.New("PKCS#7: bad ECDSA signature")
		}
	default:
		return nil, fmt.Errorf("PKCS#7: unsupported public key %T", cert.PublicKey)
	}
	return cert, nil
}

// SignatureDocument is the JSON object systemd-repart writes into a verity
// signature partition.
type SignatureDocument struct {
	RootHash               string `json:"rootHash"`
	CertificateFingerprint string `json:"certificateFingerprint"`
	Signature              string `json:"signature"`
}

// Fingerprint returns the SHA-256 of the certificate's DER encoding, the
// certificateFingerprint of the signature document.
func Fingerprint(cert *x509.Certificate) []byte {
	s := sha256.Sum256(cert.Raw)
	return s[:]
}

// SignatureJSON signs the lower-case hex form of rootHash (the string, not
// the bytes) and returns the compact JSON document
// {"rootHash":…,"certificateFingerprint":…,"signature":…} as systemd-repart
// formats it, without padding.
func SignatureJSON(rootHash []byte, key crypto.Signer, cert *x509.Certificate) ([]byte, error) {
	hexRoot := hex.EncodeToString(rootHash)
	der, err := SignPKCS7([]byte(hexRoot), key, cert)
	if err != nil {
		return nil, err
	}
	return document(hexRoot, der, cert)
}

// document formats the signature document of the hex root hash.
func document(hexRoot string, der []byte, cert *x509.Certificate) ([]byte, error) {
	return json.Marshal(SignatureDocument{
		RootHash:               hexRoot,
		CertificateFingerprint: hex.EncodeToString(Fingerprint(cert)),
		Signature:              base64.StdEncoding.EncodeToString(der),
	})
}

// PadSignature NUL-pads a signature document to size bytes, as repart fills
// the whole partition; the document plus a terminating NUL must fit.
func PadSignature(doc []byte, size int) ([]byte, error) {
	if len(doc)+1 > size {
		return nil, fmt.Errorf("verity signature of %d bytes does not fit in %d bytes", len(doc), size)
	}
	out := make([]byte, size)
	copy(out, doc)
	return out, nil
}

// ParseSignature reads a (possibly NUL-padded) signature partition payload.
func ParseSignature(payload []byte) (*SignatureDocument, []byte, error) {
	if i := bytes.IndexByte(payload, 0); i >= 0 {
		payload = payload[:i]
	}
	var d SignatureDocument
	if err := json.Unmarshal(payload, &d); err != nil {
		return nil, nil, fmt.Errorf("parsing verity signature JSON: %w", err)
	}
	der, err := base64.StdEncoding.DecodeString(d.Signature)
	if err != nil {
		return nil, nil, fmt.Errorf("decoding verity signature: %w", err)
	}
	return &d, der, nil
}

// CheckSignature verifies a signature partition payload: its PKCS#7
// signature over the rootHash string, the certificate fingerprint, and,
// when rootHash is not nil, that the document names that root hash. It
// returns the signing certificate.
func CheckSignature(payload []byte, rootHash []byte) (*x509.Certificate, error) {
	d, der, err := ParseSignature(payload)
	if err != nil {
		return nil, err
	}
	if rootHash != nil && d.RootHash != hex.EncodeToString(rootHash) {
		return nil, fmt.Errorf("signature is for root hash %s, not %x", d.RootHash, rootHash)
	}
	cert, err := VerifyPKCS7(der, []byte(d.RootHash))
	if err != nil {
		return nil, err
	}
	if fp := hex.EncodeToString(Fingerprint(cert)); fp != d.CertificateFingerprint {
		return nil, fmt.Errorf("certificate fingerprint %s does not match the signer's %s", d.CertificateFingerprint, fp)
	}
	return cert, nil
}

// LoadKeyPair reads a PEM private key (PKCS#8, PKCS#1 RSA or SEC 1 EC) and
// a PEM certificate and checks that they belong together.
func LoadKeyPair(keyFile, certFile string) (crypto.Signer, *x509.Certificate, error) {
	kb, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("reading key: %w", err)
	}
	cb, err := os.ReadFile(certFile)
	if err != nil {
		return nil, nil, fmt.Errorf("reading certificate: %w", err)
	}
	key, err := ParsePrivateKey(kb)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", keyFile, err)
	}
	cert, err := ParseCertificate(cb)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", certFile, err)
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if e, ok := key.Public().(equaler); !ok || !e.Equal(cert.PublicKey) {
		return nil, nil, fmt.Errorf("%s does not match the public key of %s", keyFile, certFile)
	}
	return key, cert, nil
}

// ParsePrivateKey decodes the first PEM private key in b.
func ParsePrivateKey(b []byte) (crypto.Signer, error) {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, errors.New("no PEM private key found")
		}
		var k any
		var err error
		switch blk.Type {
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(blk.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("encrypted private keys are not supported")
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("parsing %s: %w", blk.Type, err)
		}
		switch k.(type) {
		case *rsa.PrivateKey, *ecdsa.PrivateKey:
			return k.(crypto.Signer), nil
		case ed25519.PrivateKey:
			return nil, errors.New("Ed25519 keys are not supported for PKCS#7 verity signatures (use RSA or ECDSA)")
		}
		return nil, fmt.Errorf("unsupported private key type %T", k)
	}
}

// ParseCertificate decodes the first PEM certificate in b.
func ParseCertificate(b []byte) (*x509.Certificate, error) {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, errors.New("no PEM certificate found")
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		return x509.ParseCertificate(blk.Bytes)
	}
}
