package room

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/lanpeer/lanpeer/canon"
	"github.com/lanpeer/lanpeer/cryptosuite"
)

// Operation is what a commit does to the room (2 bytes in the layout).
type Operation uint16

// Commit operations. A leave becomes a remove.
const (
	OpCreate Operation = 1 // epoch 1: the room and its master
	OpInvite Operation = 2 // adds members
	OpRemove Operation = 3 // removes members
	OpRotate Operation = 4 // same members, new room key
)

// String names the operation.
func (o Operation) String() string {
	switch o {
	case OpCreate:
		return "create"
	case OpInvite:
		return "invite"
	case OpRemove:
		return "remove"
	case OpRotate:
		return "rotate"
	}
	return fmt.Sprintf("Operation(%d)", uint16(o))
}

// Member is one entry of a commit's member list: a member and the hash of
// the key package the epoch's room key is wrapped to (and whose
// message-signing key signs its messages in that epoch).
type Member struct {
	Peer       cryptosuite.PeerID
	KeyPackage [HashSize]byte
}

// Commit is a verified room commit (DESIGN.md §5): one epoch of a room,
// signed by its master.
type Commit struct {
	Room      [RoomIDSize]byte
	Epoch     uint64         // 1 for create, then one more per commit
	Previous  [HashSize]byte // the previous commit's hash; zero for create
	Operation Operation
	Name      string
	Suite     cryptosuite.AEADID
	Master    cryptosuite.PeerID
	// Members is the whole member list after the commit, master included,
	// in ascending order of peer ID, without duplicates.
	Members []Member
	Time    time.Time
	// Hash is the commit hash: SHA-256 of the blob.
	Hash [HashSize]byte
}

// member returns the entry of p, if p is a member.
func (c *Commit) member(p cryptosuite.PeerID) (Member, bool) {
	return findMember(c.Members, p)
}

func findMember(ms []Member, p cryptosuite.PeerID) (Member, bool) {
	i, ok := slices.BinarySearchFunc(ms, p, func(m Member, p cryptosuite.PeerID) int {
		return bytes.Compare(m.Peer[:], p[:])
	})
	if !ok {
		return Member{}, false
	}
	return ms[i], true
}

// VerifyCommit checks a commit blob: its size for lim's member bound
// (nil: defaults), the signature of master (anything else is
// ErrForgedCommit, a key package or other object included), then each
// field: epoch 1 exactly for create and only then no previous hash, a known
// operation and AEAD suite, the name rule, the master field naming master,
// a sorted member list without duplicates of at most lim.MaxMembers
// members that includes the master. It does not know the room's chain;
// MemberState.ApplyCommit checks that.
func VerifyCommit(blob []byte, master *cryptosuite.PublicKey, lim *Limits) (*Commit, error) {
	l, err := lim.resolve()
	if err != nil {
		return nil, err
	}
	if max := MaxCommitBlob(l.MaxMembers); len(blob) > max {
		return nil, fmt.Errorf("%w: commit blob of %d bytes is over the bound for %d members (%d bytes)",
			ErrTooManyMembers, len(blob), l.MaxMembers, max)
	}
	if master == nil {
		return nil, errors.New("room: VerifyCommit without the master's key")
	}
	layout, err := verifyIdentity(blob, canon.LabelRoomCommit, MaxCommitBlob(l.MaxMembers), master)
	if err != nil {
		if errors.Is(err, ErrBadSignature) {
			return nil, fmt.Errorf("%w (master %s): %w", ErrForgedCommit, master.PeerID().Short(), err)
		}
		return nil, err
	}
	c, err := parseCommit(layout, l.MaxMembers)
	if err != nil {
		return nil, err
	}
	if c.Master != master.PeerID() {
		return nil, fmt.Errorf("%w: names master %s, signed by %s", ErrForgedCommit, c.Master.Short(), master.PeerID().Short())
	}
	c.Hash = BlobHash(blob)
	return c, nil
}

// parseCommit reads a verified commit layout and checks every field's
// rule.
func parseCommit(layout []byte, maxMembers int) (*Commit, error) {
	c := &Commit{}
	r := canon.NewReader(canon.LabelRoomCommit, layout)
	copy(c.Room[:], r.Fixed(RoomIDSize))
	c.Epoch = r.Uint64()
	prev := r.Bytes()
	c.Operation = Operation(r.Uint16())
	name := r.Bytes()
	c.Suite = cryptosuite.AEADID(r.Uint16())
	copy(c.Master[:], r.Fixed(HashSize))
	elems := r.List(MaxMembersCeiling)
	tms := r.Uint64()
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: commit: %v", ErrMalformed, err)
	}
	switch {
	case c.Operation < OpCreate || c.Operation > OpRotate:
		return nil, fmt.Errorf("%w: commit operation %d", ErrMalformed, uint16(c.Operation))
	case c.Epoch == 0:
		return nil, fmt.Errorf("%w: commit epoch 0", ErrMalformed)
	case (c.Operation == OpCreate) != (c.Epoch == 1):
		return nil, fmt.Errorf("%w: %v commit at epoch %d (create is exactly epoch 1)", ErrMalformed, c.Operation, c.Epoch)
	case c.Epoch == 1 && len(prev) != 0:
		return nil, fmt.Errorf("%w: create commit with a previous hash", ErrMalformed)
	case c.Epoch > 1 && len(prev) != HashSize:
		return nil, fmt.Errorf("%w: commit previous hash of %d bytes", ErrMalformed, len(prev))
	case tms > 1<<62:
		return nil, fmt.Errorf("%w: commit time out of range", ErrMalformed)
	}
	copy(c.Previous[:], prev)
	if _, ok := cryptosuite.AEADByID(c.Suite); !ok {
		return nil, fmt.Errorf("%w: commit AEAD suite %v", ErrMalformed, c.Suite)
	}
	if err := CheckName(string(name)); err != nil {
		return nil, fmt.Errorf("%w: commit name: %w", ErrMalformed, err)
	}
	c.Name = string(name)
	if len(elems) > maxMembers {
		return nil, fmt.Errorf("%w: commit lists %d members (max %d)", ErrTooManyMembers, len(elems), maxMembers)
	}
	c.Members = make([]Member, len(elems))
	for i, e := range elems {
		if len(e) != 2*HashSize {
			return nil, fmt.Errorf("%w: commit member %d of %d bytes", ErrMalformed, i, len(e))
		}
		copy(c.Members[i].Peer[:], e[:HashSize])
		copy(c.Members[i].KeyPackage[:], e[HashSize:])
		if i > 0 && bytes.Compare(c.Members[i-1].Peer[:], c.Members[i].Peer[:]) >= 0 {
			return nil, fmt.Errorf("%w: commit member list not in ascending order of peer ID", ErrMalformed)
		}
	}
	if _, ok := c.member(c.Master); !ok {
		return nil, fmt.Errorf("%w: master %s not in the member list", ErrBadCommit, c.Master.Short())
	}
	c.Time = time.UnixMilli(int64(tms))
	return c, nil
}

// buildCommit signs c with the master's identity. c.Members must be
// sorted; the result is checked with VerifyCommit, so nothing is signed
// that a member would refuse.
func buildCommit(id *cryptosuite.Identity, c *Commit, lim *Limits) ([]byte, *Commit, error) {
	if c.Time.UnixMilli() < 0 {
		return nil, nil, errors.New("room: commit time before 1970")
	}
	f := &canon.RoomCommitFields{
		Room:       c.Room,
		Epoch:      c.Epoch,
		Operation:  uint16(c.Operation),
		Name:       c.Name,
		AEAD:       uint16(c.Suite),
		Master:     c.Master,
		Members:    make([]canon.RoomCommitMember, len(c.Members)),
		TimeMillis: uint64(c.Time.UnixMilli()),
	}
	if c.Epoch > 1 {
		f.Previous = c.Previous[:]
	}
	for i, m := range c.Members {
		f.Members[i] = canon.RoomCommitMember{Peer: m.Peer, KeyPackageHash: m.KeyPackage}
	}
	if len(c.Name) > MaxNameSize {
		return nil, nil, fmt.Errorf("%w: room name of %d bytes (max %d)", ErrBadText, len(c.Name), MaxNameSize)
	}
	blob, err := signIdentity(id, canon.LabelRoomCommit, canon.RoomCommit(f))
	if err != nil {
		return nil, nil, err
	}
	vc, err := VerifyCommit(blob, id.Public(), lim)
	if err != nil {
		return nil, nil, err
	}
	return blob, vc, nil
}
