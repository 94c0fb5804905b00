package room

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/lanpeer/lanpeer/canon"
	"github.com/lanpeer/lanpeer/cryptosuite"
)

// MemberState is what a member keeps, and persists, per room (DESIGN.md §5
// "Evidence against a host that drops or rolls back commits"): the room's
// fixed facts (id, name, AEAD suite, master and its key), and for each
// epoch it verified, oldest first, the commit hash, the member list and,
// once opened, the room key. The newest epoch is the head.
//
// Every change goes through checks against this state and changes nothing
// when one fails. A MemberState is safe for concurrent use. Make one with
// NewMemberState or ParseMemberState.
type MemberState struct {
	mu     sync.Mutex
	lim    Limits
	room   [RoomIDSize]byte
	name   string
	suite  *cryptosuite.AEADSuite
	master *cryptosuite.PublicKey
	self   cryptosuite.PeerID
	// epochs holds consecutive epochs, oldest first; the last is the head.
	// Past lim.MaxEpochs the oldest is forgotten.
	epochs []*epochRecord
	// joined maps each member of the head epoch to the epoch of its latest
	// joining, as far as this state has seen (its first epoch at most).
	joined map[cryptosuite.PeerID]uint64
	// sealed counts the messages self sealed under the head epoch's sender
	// key; it persists, so the cap holds across restarts.
	sealed uint64
	// sealer seals under the head epoch (sealerEpoch); made on first use,
	// never persisted.
	sealer      *cryptosuite.SenderSealer
	sealerEpoch uint64
}

type epochRecord struct {
	epoch   uint64
	hash    [HashSize]byte
	op      Operation
	members []Member
	key     *cryptosuite.RoomKey // nil until the wrapped key is opened
}

// NewMemberState starts a member's state from a commit that lists self: the
// create commit for the master and the first members, the commit that
// invited self for a later member (it cannot read what came before it
// joined). master is the room master's identity key, which the member
// trusts from then on: every commit and wrapped key must be signed by it.
// It comes from the master's key package (its owner is the master peer ID
// the commit names) or from a session with the master. lim nil means
// defaults.
func NewMemberState(commitBlob []byte, master *cryptosuite.PublicKey, self cryptosuite.PeerID, lim *Limits) (*MemberState, error) {
	l, err := lim.resolve()
	if err != nil {
		return nil, err
	}
	c, err := VerifyCommit(commitBlob, master, &l)
	if err != nil {
		return nil, err
	}
	if _, ok := c.member(self); !ok {
		return nil, fmt.Errorf("%w: %s is not listed by the commit of epoch %d", ErrNotMember, self.Short(), c.Epoch)
	}
	suite, _ := cryptosuite.AEADByID(c.Suite) // VerifyCommit checked it
	st := &MemberState{
		lim:    l,
		room:   c.Room,
		name:   c.Name,
		suite:  suite,
		master: master,
		self:   self,
		epochs: []*epochRecord{{epoch: c.Epoch, hash: c.Hash, op: c.Operation, members: c.Members}},
		joined: make(map[cryptosuite.PeerID]uint64, len(c.Members)),
	}
	for _, m := range c.Members {
		st.joined[m.Peer] = c.Epoch
	}
	return st, nil
}

// Room returns the room id.
func (st *MemberState) Room() [RoomIDSize]byte { return st.room }

// Name returns the room's name.
func (st *MemberState) Name() string { return st.name }

// Suite returns the room's AEAD suite.
func (st *MemberState) Suite() *cryptosuite.AEADSuite { return st.suite }

// Master returns the master's peer ID.
func (st *MemberState) Master() cryptosuite.PeerID { return st.master.PeerID() }

// MasterKey returns the master's identity key.
func (st *MemberState) MasterKey() *cryptosuite.PublicKey { return st.master }

// Self returns the peer this state belongs to.
func (st *MemberState) Self() cryptosuite.PeerID { return st.self }

// Head returns the head epoch and its commit hash: the evidence a member
// holds against a host that drops or rolls back commits.
func (st *MemberState) Head() (epoch uint64, commitHash [HashSize]byte) {
	st.mu.Lock()
	defer st.mu.Unlock()
	h := st.head()
	return h.epoch, h.hash
}

// Epochs returns the oldest and newest epoch the state remembers.
func (st *MemberState) Epochs() (oldest, newest uint64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.epochs[0].epoch, st.head().epoch
}

// Members returns a copy of the member list of epoch (ErrUnknownEpoch for
// one the state does not remember).
func (st *MemberState) Members(epoch uint64) ([]Member, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	r, err := st.record(epoch)
	if err != nil {
		return nil, err
	}
	return append([]Member(nil), r.members...), nil
}

// IsMember reports whether self is a member of the head epoch.
func (st *MemberState) IsMember() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	_, ok := findMember(st.head().members, st.self)
	return ok
}

// HasKey reports whether the state holds the room key of epoch.
func (st *MemberState) HasKey(epoch uint64) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	r, err := st.record(epoch)
	return err == nil && r.key != nil
}

func (st *MemberState) head() *epochRecord { return st.epochs[len(st.epochs)-1] }

// record returns the record of epoch, or ErrUnknownEpoch.
func (st *MemberState) record(epoch uint64) (*epochRecord, error) {
	first, last := st.epochs[0].epoch, st.head().epoch
	if epoch < first || epoch > last {
		return nil, fmt.Errorf("%w: epoch %d; this member verified epochs %d to %d", ErrUnknownEpoch, epoch, first, last)
	}
	return st.epochs[epoch-first], nil
}

// ApplyCommit verifies the next commit and makes it the head. It accepts
// only a commit signed by the master whose epoch is the head's plus one and
// whose previous hash is the head's hash, of the same room, name and suite,
// whose member list fits its operation (invite adds, remove takes away,
// rotate keeps the same peers; the master stays). Anything else changes
// nothing and is, for what the host did wrong: ErrForgedCommit (not the
// master's), ErrCommitGap (epochs skipped: commits dropped), ErrRollback
// (an epoch already passed), ErrChainBroken (a fork: the previous hash is
// not the head's), ErrCommitKnown (the head again), ErrWrongRoom,
// ErrBadCommit, ErrTooManyMembers or ErrMalformed.
func (st *MemberState) ApplyCommit(commitBlob []byte) error {
	c, err := VerifyCommit(commitBlob, st.master, &st.lim)
	if err != nil {
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if c.Room != st.room {
		return fmt.Errorf("%w: commit", ErrWrongRoom)
	}
	h := st.head()
	switch {
	case c.Epoch == h.epoch && c.Hash == h.hash:
		return fmt.Errorf("%w: epoch %d", ErrCommitKnown, c.Epoch)
	case c.Epoch <= h.epoch:
		return fmt.Errorf("%w: commit for epoch %d, verified head is epoch %d", ErrRollback, c.Epoch, h.epoch)
	case c.Epoch > h.epoch+1:
		return fmt.Errorf("%w: commit for epoch %d, verified head is epoch %d (missing %d to %d)",
			ErrCommitGap, c.Epoch, h.epoch, h.epoch+1, c.Epoch-1)
	case c.Previous != h.hash:
		return fmt.Errorf("%w: commit for epoch %d does not carry the hash of the verified epoch %d", ErrChainBroken, c.Epoch, h.epoch)
	case c.Name != st.name:
		return fmt.Errorf("%w: commit renames the room", ErrBadCommit)
	case c.Suite != st.suite.ID:
		return fmt.Errorf("%w: commit changes the AEAD suite", ErrBadCommit)
	}
	if err := checkMembership(c.Operation, h.members, c.Members); err != nil {
		return fmt.Errorf("%w: epoch %d: %w", ErrBadCommit, c.Epoch, err)
	}
	// Every check passed: commit.
	joined := make(map[cryptosuite.PeerID]uint64, len(c.Members))
	for _, m := range c.Members {
		if e, ok := st.joined[m.Peer]; ok {
			joined[m.Peer] = e
		} else {
			joined[m.Peer] = c.Epoch
		}
	}
	st.joined = joined
	st.epochs = append(st.epochs, &epochRecord{epoch: c.Epoch, hash: c.Hash, op: c.Operation, members: c.Members})
	if len(st.epochs) > st.lim.MaxEpochs {
		if k := st.epochs[0].key; k != nil {
			clear(k[:])
		}
		st.epochs[0] = nil
		st.epochs = st.epochs[1:]
	}
	st.sealed, st.sealer = 0, nil
	return nil
}

// checkMembership reports whether a member list change fits op.
func checkMembership(op Operation, old, next []Member) error {
	added, removed := 0, 0
	for _, m := range next {
		if _, ok := findMember(old, m.Peer); !ok {
			added++
		}
	}
	for _, m := range old {
		if _, ok := findMember(next, m.Peer); !ok {
			removed++
		}
	}
	switch {
	case op == OpInvite && (added == 0 || removed != 0):
		return fmt.Errorf("invite adds %d and removes %d members", added, removed)
	case op == OpRemove && (added != 0 || removed == 0):
		return fmt.Errorf("remove adds %d and removes %d members", added, removed)
	case op == OpRotate && (added != 0 || removed != 0):
		return fmt.Errorf("rotate adds %d and removes %d members", added, removed)
	case op == OpCreate:
		return errors.New("a second create")
	}
	return nil
}

// OpenWrappedKey verifies a wrapped key and stores the room key it holds.
// It checks the master's signature (ErrBadSignature: the host or anyone
// else made it), that it is for this room (ErrWrongRoom) and this member
// (ErrWrongRecipient), for an epoch the state verified (ErrUnknownEpoch)
// whose commit lists this member (ErrNotMember) with the key package it is
// wrapped to, which must be secrets' (ErrWrongKeyPackage); then it unwraps
// (ErrOpen). A second wrapped key for an epoch whose key is held is
// accepted only if it holds the same key (ErrKeyConflict). It returns the
// epoch, for the acknowledgement.
func (st *MemberState) OpenWrappedKey(wrappedBlob []byte, secrets *KeyPackageSecrets) (uint64, error) {
	w, err := VerifyWrappedKey(wrappedBlob, st.master)
	if err != nil {
		return 0, err
	}
	if secrets == nil || !secrets.kp.usable() {
		return 0, fmt.Errorf("%w: no key package secrets", ErrWrongKeyPackage)
	}
	switch {
	case w.Room != st.room:
		return 0, fmt.Errorf("%w: wrapped key", ErrWrongRoom)
	case w.Member != st.self:
		return 0, fmt.Errorf("%w: wrapped key for %s", ErrWrongRecipient, w.Member.Short())
	case secrets.kp.Owner != st.self:
		return 0, fmt.Errorf("%w: secrets of %s's key package", ErrWrongKeyPackage, secrets.kp.Owner.Short())
	case w.KeyPackage != secrets.kp.Hash():
		return 0, fmt.Errorf("%w: wrapped key is for another key package than these secrets'", ErrWrongKeyPackage)
	}
	st.mu.Lock()
	r, err := st.record(w.Epoch)
	var held *cryptosuite.RoomKey
	if err == nil {
		held = r.key
		m, ok := findMember(r.members, st.self)
		switch {
		case !ok:
			err = fmt.Errorf("%w: epoch %d does not list %s", ErrNotMember, w.Epoch, st.self.Short())
		case m.KeyPackage != w.KeyPackage:
			err = fmt.Errorf("%w: epoch %d lists another key package for %s", ErrWrongKeyPackage, w.Epoch, st.self.Short())
		}
	}
	st.mu.Unlock()
	if err != nil {
		return 0, err
	}
	// Unwrap outside the lock: it is the slow step, and reads only w.
	info := canon.RoomKeyWrapInfo(w.Room, w.Epoch, w.Member, w.KeyPackage)
	key, err := cryptosuite.UnwrapRoomKey(secrets.hpke, w.Enc, info, w.Ciphertext)
	if err != nil {
		return 0, fmt.Errorf("%w: wrapped key of epoch %d: %w", ErrOpen, w.Epoch, err)
	}
	if held != nil {
		same := subtle.ConstantTimeCompare(held[:], key[:]) == 1
		clear(key[:])
		if !same {
			return 0, fmt.Errorf("%w: epoch %d", ErrKeyConflict, w.Epoch)
		}
		return w.Epoch, nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	// The epoch may have been forgotten, or its key stored, meanwhile.
	r, err = st.record(w.Epoch)
	switch {
	case err != nil:
		clear(key[:])
		return 0, err
	case r.key != nil && subtle.ConstantTimeCompare(r.key[:], key[:]) != 1:
		clear(key[:])
		return 0, fmt.Errorf("%w: epoch %d", ErrKeyConflict, w.Epoch)
	case r.key == nil:
		r.key = key
	}
	return w.Epoch, nil
}

// SealMessage seals text as a new message of self in the head epoch: under
// self's sender key for the epoch (cryptosuite.SenderKey), a fresh random
// nonce or IV, associated data binding room, epoch, head commit hash,
// sender, msgID and the signer's key package; the whole message signed
// with secrets' message-signing key. msgID is 16 client-chosen random
// bytes; a retried send reuses the blob (or at least the id). secrets must
// be the key package the head epoch lists for self (ErrWrongKeyPackage).
// It refuses a text CheckText refuses, a state whose head does not list
// self (ErrNotMember) or whose key is not opened (ErrNoEpochKey), and,
// past cryptosuite.MaxSealsPerSenderKey messages in one epoch,
// cryptosuite.ErrSenderKeyExhausted: ask the master to rotate.
func (st *MemberState) SealMessage(secrets *KeyPackageSecrets, text string, msgID [MessageIDSize]byte) ([]byte, error) {
	if err := CheckText(text); err != nil {
		return nil, err
	}
	if secrets == nil || !secrets.kp.usable() {
		return nil, fmt.Errorf("%w: no key package secrets", ErrWrongKeyPackage)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	h := st.head()
	m, ok := findMember(h.members, st.self)
	switch {
	case !ok:
		return nil, fmt.Errorf("%w: %s is not a member of epoch %d", ErrNotMember, st.self.Short(), h.epoch)
	case secrets.kp.Owner != st.self || m.KeyPackage != secrets.kp.Hash():
		return nil, fmt.Errorf("%w: epoch %d lists another key package for %s", ErrWrongKeyPackage, h.epoch, st.self.Short())
	case h.key == nil:
		return nil, fmt.Errorf("%w: epoch %d (open its wrapped key first)", ErrNoEpochKey, h.epoch)
	case st.sealed >= cryptosuite.MaxSealsPerSenderKey:
		return nil, cryptosuite.ErrSenderKeyExhausted
	}
	if st.sealer == nil || st.sealerEpoch != h.epoch {
		k, err := cryptosuite.SenderKey(h.key, st.room, h.epoch, st.self, st.suite)
		if err != nil {
			return nil, err
		}
		s, err := cryptosuite.NewSenderSealer(st.suite, k, nil)
		clear(k)
		if err != nil {
			return nil, err
		}
		st.sealer, st.sealerEpoch = s, h.epoch
	}
	msg := &Message{Room: st.room, Epoch: h.epoch, Commit: h.hash, Sender: st.self, ID: msgID, KeyPackage: m.KeyPackage}
	hdr := msg.header()
	st.sealed++ // counted before sealing: a failed seal still used a nonce
	box, err := st.sealer.Seal(nil, []byte(text), canon.RoomMessageAAD(hdr))
	if err != nil {
		return nil, err
	}
	return signMessageKey(secrets.sign, canon.LabelRoomMessage, canon.RoomMessage(hdr, box))
}

// Plaintext is an opened room message: its verified header and text.
type Plaintext struct {
	Message
	Text string
}

// OpenMessage verifies and opens a message the member learns of after it
// verified its head: a push, or a read past the point where it applied the
// head commit. kp is the sender's key package, found by MessageSigner's
// hash. The message must be under the head epoch: an older epoch is
// ErrStaleEpoch (the host accepted a send it must refuse once a newer
// epoch exists), a later one ErrUnknownEpoch (fetch and apply the commits
// first; a host that cannot produce them dropped them). Beyond that it
// checks what OpenHistory checks.
func (st *MemberState) OpenMessage(messageBlob []byte, kp *KeyPackage) (*Plaintext, error) {
	return st.open(messageBlob, kp, true)
}

// OpenHistory verifies and opens a message of any epoch the member holds:
// the history it reads by cursor. It refuses, in order: a bad blob or
// signature, or kp not the message's signer's (ErrMalformed,
// ErrBadSignature, ErrWrongKeyPackage: a forged or re-attributed message);
// another room (ErrWrongRoom); an epoch the member did not verify
// (ErrUnknownEpoch); a commit hash other than the one it verified for that
// epoch (ErrChainBroken); a sender the epoch's commit does not list
// (ErrNotMember), or lists with another key package (ErrWrongKeyPackage);
// an epoch whose key it does not hold (ErrNoEpochKey); a box that does not
// open (ErrOpen: tampered, or sealed under another key); a text that breaks
// CheckText (ErrBadText).
func (st *MemberState) OpenHistory(messageBlob []byte, kp *KeyPackage) (*Plaintext, error) {
	return st.open(messageBlob, kp, false)
}

func (st *MemberState) open(blob []byte, kp *KeyPackage, live bool) (*Plaintext, error) {
	m, err := VerifyMessage(blob, kp)
	if err != nil {
		return nil, err
	}
	if m.Room != st.room {
		return nil, fmt.Errorf("%w: message", ErrWrongRoom)
	}
	st.mu.Lock()
	h := st.head()
	if live && m.Epoch < h.epoch {
		st.mu.Unlock()
		return nil, fmt.Errorf("%w: new message under epoch %d, verified head is epoch %d", ErrStaleEpoch, m.Epoch, h.epoch)
	}
	r, err := st.record(m.Epoch)
	if err != nil {
		st.mu.Unlock()
		return nil, err
	}
	hash, key := r.hash, r.key
	sm, isMember := findMember(r.members, m.Sender)
	var keyCopy cryptosuite.RoomKey
	if key != nil {
		keyCopy = *key
	}
	st.mu.Unlock()
	defer clear(keyCopy[:])
	switch {
	case m.Commit != hash:
		return nil, fmt.Errorf("%w: message names another commit for epoch %d than the one verified", ErrChainBroken, m.Epoch)
	case !isMember:
		return nil, fmt.Errorf("%w: sender %s is not a member of epoch %d", ErrNotMember, m.Sender.Short(), m.Epoch)
	case sm.KeyPackage != m.KeyPackage:
		return nil, fmt.Errorf("%w: epoch %d lists another key package for sender %s", ErrWrongKeyPackage, m.Epoch, m.Sender.Short())
	case key == nil:
		return nil, fmt.Errorf("%w: epoch %d", ErrNoEpochKey, m.Epoch)
	}
	sk, err := cryptosuite.SenderKey(&keyCopy, m.Room, m.Epoch, m.Sender, st.suite)
	if err != nil {
		return nil, err
	}
	defer clear(sk)
	a, err := st.suite.New(sk)
	if err != nil {
		return nil, err
	}
	pt, err := cryptosuite.OpenPrefixed(a, nil, m.Box, canon.RoomMessageAAD(m.header()))
	if err != nil {
		return nil, fmt.Errorf("%w: message box: %w", ErrOpen, err)
	}
	text := string(pt)
	if err := CheckText(text); err != nil {
		return nil, err
	}
	return &Plaintext{Message: *m, Text: text}, nil
}

// Leave signs a request by id (self's identity) to leave the room at the
// head epoch. The master cannot leave (ErrMasterCannotLeave).
func (st *MemberState) Leave(id *cryptosuite.Identity, now time.Time) ([]byte, error) {
	if id.PeerID() != st.self {
		return nil, fmt.Errorf("%w: identity %s is not this state's member", ErrNotMember, id.PeerID().Short())
	}
	if st.self == st.master.PeerID() {
		return nil, ErrMasterCannotLeave
	}
	epoch, _ := st.Head()
	return BuildLeaveRequest(id, st.room, epoch, now)
}
