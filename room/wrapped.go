package room

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/lanpeer/lanpeer/canon"
	"github.com/lanpeer/lanpeer/cryptosuite"
)

// WrappedKey is a verified wrapped room key (DESIGN.md §5): one epoch's
// room key sealed to one member's key package with the HPKE room-key wrap,
// signed by the master over (room, epoch, member, key package hash, HPKE
// enc, ciphertext). The HPKE info carries the same context.
type WrappedKey struct {
	Room       [RoomIDSize]byte
	Epoch      uint64
	Member     cryptosuite.PeerID
	KeyPackage [HashSize]byte // the key package it is wrapped to
	Enc        []byte         // HPKE encapsulated key
	Ciphertext []byte         // IV ‖ E ‖ T, cryptosuite.WrappedRoomKeySize bytes
}

// wrapRoomKey wraps key for one member of an epoch and signs the tuple.
func wrapRoomKey(id *cryptosuite.Identity, room [RoomIDSize]byte, epoch uint64, kp *KeyPackage, key *cryptosuite.RoomKey) ([]byte, error) {
	kph := kp.Hash()
	info := canon.RoomKeyWrapInfo(room, epoch, kp.Owner, kph)
	enc, ct, err := cryptosuite.WrapRoomKey(kp.HPKEKey, info, key)
	if err != nil {
		return nil, fmt.Errorf("room: wrapping for %s: %w", kp.Owner.Short(), err)
	}
	return signIdentity(id, canon.LabelWrappedKey, canon.WrappedKeyTuple(room, epoch, kp.Owner, kph, enc, ct))
}

// VerifyWrappedKey checks a wrapped key blob: size, the master's signature
// (ErrBadSignature for any other signer or purpose), then the fields:
// epoch at least 1, an HPKE enc of a size some KEM uses, a ciphertext of
// exactly cryptosuite.WrappedRoomKeySize bytes. The host runs it on every
// wrapped key the master uploads, and CheckWrappedKey against the epoch's
// commit.
func VerifyWrappedKey(blob []byte, master *cryptosuite.PublicKey) (*WrappedKey, error) {
	if master == nil {
		return nil, errors.New("room: VerifyWrappedKey without the master's key")
	}
	layout, err := verifyIdentity(blob, canon.LabelWrappedKey, MaxWrappedKeyBlob, master)
	if err != nil {
		return nil, err
	}
	w := &WrappedKey{}
	r := canon.NewReader(canon.LabelWrappedKey, layout)
	copy(w.Room[:], r.Fixed(RoomIDSize))
	w.Epoch = r.Uint64()
	copy(w.Member[:], r.Fixed(HashSize))
	copy(w.KeyPackage[:], r.Fixed(HashSize))
	enc := r.Bytes()
	ct := r.Fixed(cryptosuite.WrappedRoomKeySize)
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: wrapped key: %v", ErrMalformed, err)
	}
	if w.Epoch == 0 {
		return nil, fmt.Errorf("%w: wrapped key for epoch 0", ErrMalformed)
	}
	if len(enc) != cryptosuite.KEMX25519.EncSize() && len(enc) != cryptosuite.KEMMLKEM768X25519.EncSize() {
		return nil, fmt.Errorf("%w: wrapped key HPKE enc of %d bytes", ErrMalformed, len(enc))
	}
	w.Enc = bytes.Clone(enc)
	w.Ciphertext = bytes.Clone(ct)
	return w, nil
}

// CheckWrappedKey reports whether w belongs to commit c: same room and
// epoch, addressed to a member c lists, wrapped to the key package c lists
// for it.
func CheckWrappedKey(c *Commit, w *WrappedKey) error {
	switch {
	case w.Room != c.Room:
		return fmt.Errorf("%w: wrapped key", ErrWrongRoom)
	case w.Epoch != c.Epoch:
		return fmt.Errorf("%w: wrapped key for epoch %d, commit of epoch %d", ErrUnknownEpoch, w.Epoch, c.Epoch)
	}
	m, ok := c.member(w.Member)
	if !ok {
		return fmt.Errorf("%w: wrapped key for %s, not a member of epoch %d", ErrNotMember, w.Member.Short(), c.Epoch)
	}
	if m.KeyPackage != w.KeyPackage {
		return fmt.Errorf("%w: wrapped key for %s is not wrapped to the key package epoch %d lists",
			ErrWrongKeyPackage, w.Member.Short(), c.Epoch)
	}
	return nil
}
