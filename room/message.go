package room

import (
	"bytes"
	"crypto/ed25519"
	"fmt"

	"github.com/lanpeer/lanpeer/canon"
	"github.com/lanpeer/lanpeer/cryptosuite"
)

// Message is a room message whose signature has been verified (DESIGN.md
// §5): the header, which the box's associated data binds and the sender's
// message-signing key signs, and the sealed box. Reading the text needs
// the epoch's room key: MemberState.OpenMessage.
type Message struct {
	Room       [RoomIDSize]byte
	Epoch      uint64
	Commit     [HashSize]byte // hash of the commit that started Epoch
	Sender     cryptosuite.PeerID
	ID         [MessageIDSize]byte // client-chosen; a retried send keeps it
	KeyPackage [HashSize]byte      // the signer's key package
	Box        []byte              // nonce (or IV) ‖ ciphertext
}

func (m *Message) header() *canon.RoomMessageHeader {
	return &canon.RoomMessageHeader{
		Room: m.Room, Epoch: m.Epoch, CommitHash: m.Commit, Sender: m.Sender,
		MessageID: m.ID, KeyPackageHash: m.KeyPackage,
	}
}

// MessageSigner reads the sender and key package hash a message blob
// claims, without verifying anything. Use it only to find the key package
// to verify the message with (VerifyMessage then checks the claim).
func MessageSigner(blob []byte) (sender cryptosuite.PeerID, keyPackage [HashSize]byte, err error) {
	layout, _, err := SplitBlob(blob, canon.LabelRoomMessage, MaxMessageBlob)
	if err != nil {
		return sender, keyPackage, err
	}
	m, err := parseMessage(layout)
	if err != nil {
		return sender, keyPackage, err
	}
	return m.Sender, m.KeyPackage, nil
}

// VerifyMessage checks a message blob without any room key: size, the
// Ed25519 signature by kp's message-signing key, the fields' bounds, and
// that the message names kp as its signer's key package and kp's owner as
// its sender. A host runs it before storing a message; a member's
// OpenMessage runs it first. kp must come from VerifyKeyPackage or
// VerifyStoredKeyPackage.
func VerifyMessage(blob []byte, kp *KeyPackage) (*Message, error) {
	layout, sig, err := SplitBlob(blob, canon.LabelRoomMessage, MaxMessageBlob)
	if err != nil {
		return nil, err
	}
	if err := verifyMessageSig(layout, sig, kp, true); err != nil {
		return nil, err
	}
	m, err := parseMessage(layout)
	if err != nil {
		return nil, err
	}
	if err := m.signedBy(kp); err != nil {
		return nil, err
	}
	m.Box = bytes.Clone(m.Box)
	return m, nil
}

// verifyMessageSig checks a message layout's signature by kp's
// message-signing key; without verify, only the signature's size (a host
// that skips the check, HostConfig.SkipMessageSignatures).
func verifyMessageSig(layout, sig []byte, kp *KeyPackage, verify bool) error {
	if !kp.usable() {
		return fmt.Errorf("%w: no verified key package for the message", ErrWrongKeyPackage)
	}
	if !verify {
		if len(sig) != ed25519.SignatureSize {
			return fmt.Errorf("%w: %s", ErrBadSignature, canon.LabelRoomMessage)
		}
		return nil
	}
	return verifyMessageKey(kp.SigningKey, canon.LabelRoomMessage, layout, sig)
}

// signedBy checks that m names kp as its key package and kp's owner as
// its sender.
func (m *Message) signedBy(kp *KeyPackage) error {
	if m.KeyPackage != kp.Hash() {
		return fmt.Errorf("%w: message names another key package than the one it verified under", ErrWrongKeyPackage)
	}
	if m.Sender != kp.Owner {
		return fmt.Errorf("%w: message claims sender %s, signed with a key package of %s",
			ErrWrongKeyPackage, m.Sender.Short(), kp.Owner.Short())
	}
	return nil
}

func parseMessage(layout []byte) (*Message, error) {
	m := &Message{}
	r := canon.NewReader(canon.LabelRoomMessage, layout)
	copy(m.Room[:], r.Fixed(RoomIDSize))
	m.Epoch = r.Uint64()
	copy(m.Commit[:], r.Fixed(HashSize))
	copy(m.Sender[:], r.Fixed(HashSize))
	copy(m.ID[:], r.Fixed(MessageIDSize))
	copy(m.KeyPackage[:], r.Fixed(HashSize))
	m.Box = r.Bytes()
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: message: %v", ErrMalformed, err)
	}
	if m.Epoch == 0 {
		return nil, fmt.Errorf("%w: message under epoch 0", ErrMalformed)
	}
	if len(m.Box) == 0 || len(m.Box) > MaxBoxSize {
		return nil, fmt.Errorf("%w: message box of %d bytes (1 to %d)", ErrMalformed, len(m.Box), MaxBoxSize)
	}
	return m, nil
}
