package room

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
)

// Proposal is what the master's client makes for a new epoch: the signed
// commit and the new room key wrapped for every member of the epoch, the
// master included. It uploads them to the host (the wrapped keys one per
// frame) and, once the host has accepted the commit, applies it to its own
// state with ApplyProposal, as every member applies it with ApplyCommit and
// OpenWrappedKey. The room key itself is not kept: it exists only wrapped.
type Proposal struct {
	// Commit is the signed commit blob.
	Commit []byte
	// Info is the commit's verified content.
	Info *Commit
	// Wrapped holds one wrapped key per member of the new epoch, in the
	// order of Info.Members.
	Wrapped []Wrapped
}

// Wrapped is one member's wrapped key blob in a Proposal.
type Wrapped struct {
	Member     cryptosuite.PeerID
	KeyPackage [HashSize]byte
	Blob       []byte
}

// RoomConfig configures NewRoom.
type RoomConfig struct {
	// Master is the creator's identity; it becomes the room's master.
	Master *cryptosuite.Identity
	// KeyPackage is the master's own key package, valid at Now.
	KeyPackage *KeyPackage
	// Name names the room (CheckName).
	Name string
	// Suite is the room's AEAD; 0 means cryptosuite.AEADA256CBCHS512.
	Suite cryptosuite.AEADID
	// Now is the commit's time.
	Now time.Time
	// Limits bound the room; nil means defaults.
	Limits *Limits
}

// NewRoom makes a room: a fresh random room id and the create commit
// (epoch 1, the master its only member) with the first room key wrapped to
// the master's key package. The master then makes its state with
// NewMemberState(p.Commit, ...) and opens its wrapped key.
func NewRoom(cfg RoomConfig) (*Proposal, error) {
	if cfg.Master == nil {
		return nil, errors.New("room: NewRoom without a master identity")
	}
	if cfg.Suite == 0 {
		cfg.Suite = cryptosuite.AEADA256CBCHS512
	}
	if _, ok := cryptosuite.AEADByID(cfg.Suite); !ok {
		return nil, fmt.Errorf("room: unknown AEAD suite %v", cfg.Suite)
	}
	if err := CheckName(cfg.Name); err != nil {
		return nil, err
	}
	self := cfg.Master.PeerID()
	kps, err := chooseKeyPackages([]cryptosuite.PeerID{self}, []*KeyPackage{cfg.KeyPackage}, cfg.Now)
	if err != nil {
		return nil, err
	}
	c := &Commit{
		Epoch:     1,
		Operation: OpCreate,
		Name:      cfg.Name,
		Suite:     cfg.Suite,
		Master:    self,
		Time:      cfg.Now,
	}
	rand.Read(c.Room[:]) // never fails
	return propose(cfg.Master, c, kps, cfg.Limits)
}

// Invite proposes the next epoch with invitees added. kps must hold a key
// package valid at now for every member of the new epoch (the freshest of
// a member's is used: DESIGN.md §5 prefers a fresh one), each from
// VerifyKeyPackage. Only the master, with its own identity, may invite
// (ErrNotMaster); an invitee already a member is ErrAlreadyMember, a list
// over Limits.MaxMembers ErrTooManyMembers.
func (st *MemberState) Invite(master *cryptosuite.Identity, kps []*KeyPackage, now time.Time, invitees ...cryptosuite.PeerID) (*Proposal, error) {
	if len(invitees) == 0 {
		return nil, errors.New("room: invite of nobody")
	}
	return st.proposeNext(master, OpInvite, kps, now, func(cur []cryptosuite.PeerID) ([]cryptosuite.PeerID, error) {
		for _, p := range invitees {
			if slices.Contains(cur, p) {
				return nil, fmt.Errorf("%w: %s", ErrAlreadyMember, p.Short())
			}
			cur = append(cur, p)
		}
		return cur, nil
	})
}

// Remove proposes the next epoch without the removed members, under a new
// room key none of them receives. A leave becomes a remove. The master
// cannot be removed (ErrMasterCannotLeave); a peer not in the head epoch is
// ErrNotMember. kps as for Invite.
func (st *MemberState) Remove(master *cryptosuite.Identity, kps []*KeyPackage, now time.Time, removed ...cryptosuite.PeerID) (*Proposal, error) {
	if len(removed) == 0 {
		return nil, errors.New("room: remove of nobody")
	}
	return st.proposeNext(master, OpRemove, kps, now, func(cur []cryptosuite.PeerID) ([]cryptosuite.PeerID, error) {
		for _, p := range removed {
			if p == master.PeerID() {
				return nil, ErrMasterCannotLeave
			}
			i := slices.Index(cur, p)
			if i < 0 {
				return nil, fmt.Errorf("%w: %s", ErrNotMember, p.Short())
			}
			cur = slices.Delete(cur, i, i+1)
		}
		return cur, nil
	})
}

// Rotate proposes the next epoch with the same members and a new room
// key. kps as for Invite.
func (st *MemberState) Rotate(master *cryptosuite.Identity, kps []*KeyPackage, now time.Time) (*Proposal, error) {
	return st.proposeNext(master, OpRotate, kps, now, func(cur []cryptosuite.PeerID) ([]cryptosuite.PeerID, error) {
		return cur, nil
	})
}

// AcceptLeave checks a verified leave request against the master's state
// before the master turns it into a remove commit: same room, the member
// in the head epoch and not the master, and signed at or after the epoch of
// the member's latest joining and not past the head (ErrStaleLeave: a
// request replayed from an earlier membership).
func (st *MemberState) AcceptLeave(lr *LeaveRequest) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	h := st.head()
	joined, ok := st.joined[lr.Member]
	switch {
	case lr.Room != st.room:
		return fmt.Errorf("%w: leave request", ErrWrongRoom)
	case lr.Member == st.master.PeerID():
		return ErrMasterCannotLeave
	case !ok:
		return fmt.Errorf("%w: %s", ErrNotMember, lr.Member.Short())
	case lr.Epoch < joined || lr.Epoch > h.epoch:
		return fmt.Errorf("%w: signed at epoch %d; %s joined at epoch %d, head is epoch %d",
			ErrStaleLeave, lr.Epoch, lr.Member.Short(), joined, h.epoch)
	}
	return nil
}

// ApplyProposal applies the master's own accepted proposal: ApplyCommit,
// then OpenWrappedKey of the master's wrapped key with secrets.
func (st *MemberState) ApplyProposal(p *Proposal, secrets *KeyPackageSecrets) error {
	if err := st.ApplyCommit(p.Commit); err != nil {
		return err
	}
	for _, w := range p.Wrapped {
		if w.Member == st.self {
			_, err := st.OpenWrappedKey(w.Blob, secrets)
			return err
		}
	}
	return fmt.Errorf("%w: the proposal wraps no key for %s", ErrNoEpochKey, st.self.Short())
}

// proposeNext builds the commit after the head with the member list change
// gives.
func (st *MemberState) proposeNext(master *cryptosuite.Identity, op Operation, kps []*KeyPackage, now time.Time,
	change func(cur []cryptosuite.PeerID) ([]cryptosuite.PeerID, error)) (*Proposal, error) {
	if master == nil || master.PeerID() != st.master.PeerID() || st.self != st.master.PeerID() {
		return nil, ErrNotMaster
	}
	st.mu.Lock()
	h := st.head()
	cur := make([]cryptosuite.PeerID, len(h.members))
	for i, m := range h.members {
		cur[i] = m.Peer
	}
	c := &Commit{
		Room:      st.room,
		Epoch:     h.epoch + 1,
		Previous:  h.hash,
		Operation: op,
		Name:      st.name,
		Suite:     st.suite.ID,
		Master:    st.self,
		Time:      now,
	}
	lim := st.lim
	st.mu.Unlock()
	next, err := change(cur)
	if err != nil {
		return nil, err
	}
	if len(next) > lim.MaxMembers {
		return nil, fmt.Errorf("%w: %d members (max %d)", ErrTooManyMembers, len(next), lim.MaxMembers)
	}
	chosen, err := chooseKeyPackages(next, kps, now)
	if err != nil {
		return nil, err
	}
	return propose(master, c, chosen, &lim)
}

// chooseKeyPackages picks, for each peer, the freshest of its key packages
// in kps that is valid at now, and returns them sorted by peer ID.
func chooseKeyPackages(peers []cryptosuite.PeerID, kps []*KeyPackage, now time.Time) ([]*KeyPackage, error) {
	out := make([]*KeyPackage, 0, len(peers))
	for _, p := range peers {
		var best *KeyPackage
		var lastErr error
		for _, kp := range kps {
			if !kp.usable() || kp.Owner != p {
				continue
			}
			if err := kp.ValidAt(now); err != nil {
				lastErr = err
				continue
			}
			if best == nil || kp.Created.After(best.Created) {
				best = kp
			}
		}
		if best == nil {
			if lastErr != nil {
				return nil, lastErr
			}
			return nil, fmt.Errorf("%w: %s (it must dial the host once to publish one)", ErrMissingKeyPackage, p.Short())
		}
		out = append(out, best)
	}
	slices.SortFunc(out, func(a, b *KeyPackage) int { return bytes.Compare(a.Owner[:], b.Owner[:]) })
	return out, nil
}

// propose fills c's member list from kps (sorted), signs it, and wraps a
// fresh room key for every member.
func propose(master *cryptosuite.Identity, c *Commit, kps []*KeyPackage, lim *Limits) (*Proposal, error) {
	c.Members = make([]Member, len(kps))
	for i, kp := range kps {
		c.Members[i] = Member{Peer: kp.Owner, KeyPackage: kp.Hash()}
	}
	blob, vc, err := buildCommit(master, c, lim)
	if err != nil {
		return nil, err
	}
	key := cryptosuite.GenerateRoomKey()
	defer clear(key[:])
	p := &Proposal{Commit: blob, Info: vc, Wrapped: make([]Wrapped, len(kps))}
	for i, kp := range kps {
		wb, err := wrapRoomKey(master, c.Room, c.Epoch, kp, key)
		if err != nil {
			return nil, err
		}
		p.Wrapped[i] = Wrapped{Member: kp.Owner, KeyPackage: kp.Hash(), Blob: wb}
	}
	return p, nil
}
