package sysupdate

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// SigningKey is an OpenPGP secret key that signs SHA256SUMS manifests.
type SigningKey struct {
	entity *openpgp.Entity
	// File is where the key was read from, for messages.
	File string
}

// LoadSigningKey reads an OpenPGP secret key (armored, as `gpg
// --export-secret-keys --armor` writes it, or binary) from file. A
// passphrase-protected key is unlocked with passphrase; without one it is
// an error.
func LoadSigningKey(file string, passphrase []byte) (*SigningKey, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading signing key: %w", err)
	}
	var ents openpgp.EntityList
	if bytes.Contains(b, []byte("-----BEGIN PGP")) {
		ents, err = openpgp.ReadArmoredKeyRing(bytes.NewReader(b))
	} else {
		ents, err = openpgp.ReadKeyRing(bytes.NewReader(b))
	}
	if err != nil {
		return nil, fmt.Errorf("reading signing key %s: %w", file, err)
	}
	var found *openpgp.Entity
	for _, e := range ents {
		if e.PrivateKey != nil {
			if found != nil {
				return nil, fmt.Errorf("reading signing key %s: it holds more than one secret key; export only the release key", file)
			}
			found = e
		}
	}
	if found == nil {
		return nil, fmt.Errorf("reading signing key %s: no secret key in it (export it with gpg --export-secret-keys)", file)
	}
	k, ok := found.SigningKey(time.Now())
	if !ok {
		return nil, fmt.Errorf("reading signing key %s: no usable signing key (expired, revoked or not allowed to sign)", file)
	}
	if k.PrivateKey == nil {
		return nil, fmt.Errorf("reading signing key %s: the signing subkey's secret part is missing", file)
	}
	if k.PrivateKey.Encrypted {
		if len(passphrase) == 0 {
			return nil, fmt.Errorf("reading signing key %s: it is protected by a passphrase (set SXB_SIGN_PASSPHRASE)", file)
		}
		if err := found.DecryptPrivateKeys(passphrase); err != nil {
			return nil, fmt.Errorf("reading signing key %s: unlocking it: %w", file, err)
		}
	}
	return &SigningKey{entity: found, File: file}, nil
}

// Fingerprint returns the hex fingerprint of the primary key.
func (k *SigningKey) Fingerprint() string {
	return fmt.Sprintf("%X", k.entity.PrimaryKey.Fingerprint)
}

// Sign returns a binary detached OpenPGP signature of data (SHA-256, as
// `gpg --detach-sign` writes SHA256SUMS.gpg). The signature time is epoch,
// or the signing key's creation time when that is later (verifiers refuse
// signatures older than their key), and the signature carries no random
// salt: with an RSA or EdDSA key the same data and epoch give the same
// bytes.
func (k *SigningKey) Sign(data []byte, epoch int64) ([]byte, error) {
	sk, ok := k.entity.SigningKey(time.Now())
	if !ok {
		return nil, errors.New("signing: no usable signing key")
	}
	t := time.Unix(epoch, 0)
	if c := sk.PublicKey.CreationTime; c.After(t) {
		t = c
	}
	det := false
	cfg := &packet.Config{
		DefaultHash:                           crypto.SHA256,
		Time:                                  func() time.Time { return t },
		SigningKeyId:                          sk.PublicKey.KeyId,
		NonDeterministicSignaturesViaNotation: &det,
	}
	var out bytes.Buffer
	if err := openpgp.DetachSign(&out, k.entity, bytes.NewReader(data), cfg); err != nil {
		return nil, fmt.Errorf("signing with %s: %w", k.File, err)
	}
	return out.Bytes(), nil
}
