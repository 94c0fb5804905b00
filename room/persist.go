package room

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/lanpeer/lanpeer/cryptosuite"
)

// stateVersion is the version of the persisted MemberState format.
const stateVersion = 1

// The persisted form of a MemberState: JSON, ids and hashes as lowercase
// hex, keys as base64 (encoding/json's []byte).
type stateJSON struct {
	Version   int          `json:"version"`
	Room      string       `json:"room"`
	Name      string       `json:"name"`
	Suite     uint16       `json:"suite"`
	MasterKey []byte       `json:"master_key"` // SPKI DER
	Self      string       `json:"self"`
	Sealed    uint64       `json:"sealed"`
	Joined    []joinedJSON `json:"joined"`
	Epochs    []epochJSON  `json:"epochs"`
}

type joinedJSON struct {
	Peer  string `json:"peer"`
	Epoch uint64 `json:"epoch"`
}

type epochJSON struct {
	Epoch   uint64       `json:"epoch"`
	Commit  string       `json:"commit"`
	Op      uint16       `json:"op"`
	Members []memberJSON `json:"members"`
	Key     []byte       `json:"key,omitempty"`
}

type memberJSON struct {
	Peer       string `json:"peer"`
	KeyPackage string `json:"key_package"`
}

// Marshal returns the state in its persisted form (JSON). It holds the room
// keys the member opened: store it readable by its owner only.
func (st *MemberState) Marshal() ([]byte, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	s := stateJSON{
		Version:   stateVersion,
		Room:      hex.EncodeToString(st.room[:]),
		Name:      st.name,
		Suite:     uint16(st.suite.ID),
		MasterKey: st.master.SPKI(),
		Self:      st.self.String(),
		Sealed:    st.sealed,
	}
	for _, m := range st.head().members {
		s.Joined = append(s.Joined, joinedJSON{Peer: m.Peer.String(), Epoch: st.joined[m.Peer]})
	}
	for _, r := range st.epochs {
		e := epochJSON{Epoch: r.epoch, Commit: hex.EncodeToString(r.hash[:]), Op: uint16(r.op)}
		for _, m := range r.members {
			e.Members = append(e.Members, memberJSON{Peer: m.Peer.String(), KeyPackage: hex.EncodeToString(m.KeyPackage[:])})
		}
		if r.key != nil {
			e.Key = r.key[:]
		}
		s.Epochs = append(s.Epochs, e)
	}
	return json.Marshal(&s)
}

// MaxStateSize bounds a persisted MemberState under lim (nil: defaults).
func MaxStateSize(lim *Limits) int {
	l, err := lim.resolve()
	if err != nil {
		return 0
	}
	const perMember = 2*(2*HashSize+16) + 16 // a member entry, and its joined entry
	return 4096 + l.MaxEpochs*(512+l.MaxMembers*perMember) + l.MaxMembers*perMember
}

// ParseMemberState reads what Marshal wrote and checks it as it would a
// peer's input: its size first (MaxStateSize), then every field and the
// invariants (consecutive epochs, sorted member lists that include the
// master, a joined epoch for each head member, keys of the right size).
func ParseMemberState(b []byte, lim *Limits) (*MemberState, error) {
	l, err := lim.resolve()
	if err != nil {
		return nil, err
	}
	if max := MaxStateSize(&l); len(b) > max {
		return nil, fmt.Errorf("%w: member state of %d bytes (max %d)", ErrMalformed, len(b), max)
	}
	var s stateJSON
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&s); err != nil {
		return nil, fmt.Errorf("%w: member state: %v", ErrMalformed, err)
	}
	if d.More() {
		return nil, fmt.Errorf("%w: member state: data after the object", ErrMalformed)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: member state: %s", ErrMalformed, fmt.Sprintf(format, args...))
	}
	if s.Version != stateVersion {
		return nil, bad("version %d (want %d)", s.Version, stateVersion)
	}
	st := &MemberState{lim: l}
	if err := hexInto(st.room[:], s.Room); err != nil {
		return nil, bad("room: %v", err)
	}
	if err := CheckName(s.Name); err != nil {
		return nil, bad("name: %v", err)
	}
	st.name = s.Name
	var ok bool
	if st.suite, ok = cryptosuite.AEADByID(cryptosuite.AEADID(s.Suite)); !ok {
		return nil, bad("unknown suite %d", s.Suite)
	}
	if st.master, err = cryptosuite.ParsePublicKey(s.MasterKey); err != nil {
		return nil, bad("master key: %v", err)
	}
	if err := hexInto(st.self[:], s.Self); err != nil {
		return nil, bad("self: %v", err)
	}
	st.sealed = s.Sealed
	if len(s.Epochs) == 0 || len(s.Epochs) > l.MaxEpochs {
		return nil, bad("%d epochs (1 to %d)", len(s.Epochs), l.MaxEpochs)
	}
	master := st.master.PeerID()
	for i, e := range s.Epochs {
		r := &epochRecord{epoch: e.Epoch, op: Operation(e.Op)}
		if e.Epoch == 0 || (i > 0 && e.Epoch != s.Epochs[i-1].Epoch+1) {
			return nil, bad("epoch %d out of order", e.Epoch)
		}
		if r.op < OpCreate || r.op > OpRotate || (r.op == OpCreate) != (e.Epoch == 1) {
			return nil, bad("epoch %d: operation %d", e.Epoch, e.Op)
		}
		if err := hexInto(r.hash[:], e.Commit); err != nil {
			return nil, bad("epoch %d commit: %v", e.Epoch, err)
		}
		if len(e.Members) > l.MaxMembers {
			return nil, bad("epoch %d: %d members (max %d)", e.Epoch, len(e.Members), l.MaxMembers)
		}
		r.members = make([]Member, len(e.Members))
		for j, m := range e.Members {
			if hexInto(r.members[j].Peer[:], m.Peer) != nil || hexInto(r.members[j].KeyPackage[:], m.KeyPackage) != nil {
				return nil, bad("epoch %d: member %d", e.Epoch, j)
			}
			if j > 0 && bytes.Compare(r.members[j-1].Peer[:], r.members[j].Peer[:]) >= 0 {
				return nil, bad("epoch %d: members not in ascending order", e.Epoch)
			}
		}
		if _, ok := findMember(r.members, master); !ok {
			return nil, bad("epoch %d: master not a member", e.Epoch)
		}
		if e.Key != nil {
			if len(e.Key) != cryptosuite.RoomKeySize {
				return nil, bad("epoch %d: key of %d bytes", e.Epoch, len(e.Key))
			}
			r.key = new(cryptosuite.RoomKey)
			copy(r.key[:], e.Key)
			clear(e.Key)
		}
		st.epochs = append(st.epochs, r)
	}
	h := st.head()
	if len(s.Joined) != len(h.members) {
		return nil, bad("%d joined entries for %d members", len(s.Joined), len(h.members))
	}
	st.joined = make(map[cryptosuite.PeerID]uint64, len(s.Joined))
	for _, j := range s.Joined {
		var p cryptosuite.PeerID
		if err := hexInto(p[:], j.Peer); err != nil {
			return nil, bad("joined: %v", err)
		}
		if _, ok := findMember(h.members, p); !ok || j.Epoch == 0 || j.Epoch > h.epoch {
			return nil, bad("joined entry for %s", p.Short())
		}
		if _, dup := st.joined[p]; dup {
			return nil, bad("joined entry for %s twice", p.Short())
		}
		st.joined[p] = j.Epoch
	}
	return st, nil
}

// hexInto decodes s, which must be exactly 2*len(dst) lowercase hex
// characters, into dst.
func hexInto(dst []byte, s string) error {
	if len(s) != 2*len(dst) {
		return fmt.Errorf("want %d hex characters, got %d", 2*len(dst), len(s))
	}
	if _, err := hex.Decode(dst, []byte(s)); err != nil {
		return err
	}
	if hex.EncodeToString(dst) != s {
		return fmt.Errorf("not lowercase hex")
	}
	return nil
}
