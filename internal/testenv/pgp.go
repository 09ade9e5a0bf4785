package testenv

import (
	"bytes"
	"os"
	"path/filepath"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// PGPKey writes a fresh Ed25519 OpenPGP key into dir: secret.asc, the
// armored secret key (what `gpg --export-secret-keys --armor` writes), and
// pubring.gpg, the binary public key that gpgv and systemd-pull take as a
// keyring. It is made in Go rather than with gpg so that no gpg-agent is
// left running.
func PGPKey(dir string) (secret, pubring string, err error) {
	e, err := openpgp.NewEntity("sxb test release key", "", "release@sxb.invalid",
		&packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		return "", "", err
	}
	var sec bytes.Buffer
	aw, err := armor.Encode(&sec, openpgp.PrivateKeyType, nil)
	if err != nil {
		return "", "", err
	}
	if err := e.SerializePrivate(aw, nil); err != nil {
		return "", "", err
	}
	aw.Close()
	var pub bytes.Buffer
	if err := e.Serialize(&pub); err != nil {
		return "", "", err
	}
	secret, pubring = filepath.Join(dir, "secret.asc"), filepath.Join(dir, "pubring.gpg")
	if err := os.WriteFile(secret, sec.Bytes(), 0o600); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(pubring, pub.Bytes(), 0o644); err != nil {
		return "", "", err
	}
	return secret, pubring, nil
}
