package session

import (
	"crypto/sha256"

	"github.com/lanpeer/lanpeer/canon"
	"github.com/lanpeer/lanpeer/cryptosuite"
)

// Key schedule (docs/PROTOCOL.md, "Key schedule"):
//
//	TH        = SHA-256(ResponderHello layout)
//	PRK       = HKDF-Extract(salt = TH, IKM = shared secret)
//	k_c2s     = HKDF-Expand(PRK, "lanpeer/v1 c2s", AEAD key size)
//	k_s2c     = HKDF-Expand(PRK, "lanpeer/v1 s2c", AEAD key size)
//	k_seal    = HKDF-Expand(PRK, "lanpeer/v1 auth key seal", AEAD key size)
//	k_fin     = HKDF-Expand(PRK, "lanpeer/v1 finished key", 32)
//	k_rekey   = HKDF-Expand(PRK, "lanpeer/v1 rekey", 32)
//
// k_rekey is never used as a key: it chains the handshake's secret into
// the first rekey (rekey.go).
//
// The info strings are the bare ASCII labels, so `openssl kdf HKDF` with
// `-kdfopt info:...` derives the same keys.
type schedule struct {
	c2s, s2c, seal, finished, rekey []byte
}

const (
	finishedKeySize = 32
	rekeySecretSize = 32
)

func deriveSchedule(shared []byte, th [32]byte, aead *cryptosuite.AEADSuite) (*schedule, error) {
	prk, err := cryptosuite.HKDFExtract(shared, th[:])
	if err != nil {
		return nil, err
	}
	defer clear(prk)
	s := &schedule{}
	for _, k := range []struct {
		dst   *[]byte
		label string
		n     int
	}{
		{&s.c2s, canon.LabelC2S, aead.KeySize},
		{&s.s2c, canon.LabelS2C, aead.KeySize},
		{&s.seal, canon.LabelAuthKeySeal, aead.KeySize},
		{&s.finished, canon.LabelFinishedKey, finishedKeySize},
		{&s.rekey, canon.LabelRekey, rekeySecretSize},
	} {
		if *k.dst, err = cryptosuite.HKDFExpand(prk, []byte(k.label), k.n); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *schedule) wipe() {
	clear(s.c2s)
	clear(s.s2c)
	clear(s.seal)
	clear(s.finished)
	clear(s.rekey)
}

func transcriptHash(layout []byte) [32]byte { return sha256.Sum256(layout) }
