package room

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestPersistRoundTrip: a restored state is the same state: same facts,
// same chain, same keys, same joined epochs; it keeps verifying commits
// and refusing rollbacks.
func TestPersistRoundTrip(t *testing.T) {
	f := newFixture(t)
	for _, st := range []*MemberState{f.sa, f.sb, f.sc} {
		b := must(st.Marshal())(t)
		r := must(ParseMemberState(b, nil))(t)
		if again := must(r.Marshal())(t); !bytes.Equal(again, b) {
			t.Fatalf("marshal(parse(x)) != x:\n%s\n%s", b, again)
		}
		if r.Room() != st.Room() || r.Name() != st.Name() || r.Suite() != st.Suite() || r.Self() != st.Self() ||
			!r.MasterKey().Equal(st.MasterKey()) {
			t.Fatal("room facts changed")
		}
		for e := uint64(1); e <= 3; e++ {
			if r.HasKey(e) != st.HasKey(e) {
				t.Fatalf("key of epoch %d", e)
			}
		}
		wantErr(t, r.ApplyCommit(f.p[2].Commit), ErrRollback)
	}
	sb := must(ParseMemberState(must(f.sb.Marshal())(t), nil))(t)
	p4 := must(f.sa.Rotate(f.alice.id, kps(f.alice, f.bob, f.carol), t0))(t)
	follow(t, sb, p4, f.bob)
	// Joined epochs survive: the master's restored state still refuses
	// carol's leave request from before she joined.
	sa := must(ParseMemberState(must(f.sa.Marshal())(t), nil))(t)
	lr := must(VerifyLeaveRequest(must(BuildLeaveRequest(f.carol.id, sa.Room(), 2, t0))(t), f.carol.id.Public()))(t)
	wantErr(t, sa.AcceptLeave(lr), ErrStaleLeave)
}

// TestPersistRefusals: a state file that breaks a rule is refused with
// ErrMalformed.
func TestPersistRefusals(t *testing.T) {
	f := newFixture(t)
	good := must(f.sb.Marshal())(t)
	edit := func(fn func(s *stateJSON)) []byte {
		var s stateJSON
		if err := json.Unmarshal(good, &s); err != nil {
			t.Fatal(err)
		}
		fn(&s)
		b, err := json.Marshal(&s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := map[string][]byte{
		"not JSON":          []byte("{"),
		"unknown field":     bytes.Replace(good, []byte(`{"version":1,`), []byte(`{"version":1,"extra":2,`), 1),
		"two objects":       append(append([]byte(nil), good...), good...),
		"version":           edit(func(s *stateJSON) { s.Version = 2 }),
		"room":              edit(func(s *stateJSON) { s.Room = s.Room[:30] }),
		"uppercase hex":     edit(func(s *stateJSON) { s.Self = strings.ToUpper(s.Self) }),
		"name":              edit(func(s *stateJSON) { s.Name = "" }),
		"suite":             edit(func(s *stateJSON) { s.Suite = 77 }),
		"master key":        edit(func(s *stateJSON) { s.MasterKey = s.MasterKey[1:] }),
		"no epochs":         edit(func(s *stateJSON) { s.Epochs = nil }),
		"epoch gap":         edit(func(s *stateJSON) { s.Epochs[1].Epoch = 5 }),
		"epoch zero":        edit(func(s *stateJSON) { s.Epochs[0].Epoch = 0 }),
		"operation":         edit(func(s *stateJSON) { s.Epochs[0].Op = 1 }),
		"commit hash":       edit(func(s *stateJSON) { s.Epochs[0].Commit = "00" }),
		"key size":          edit(func(s *stateJSON) { s.Epochs[0].Key = s.Epochs[0].Key[:63] }),
		"member order":      edit(func(s *stateJSON) { m := s.Epochs[1].Members; m[0], m[1] = m[1], m[0] }),
		"master not member": edit(func(s *stateJSON) { s.Epochs[0].Members = s.Epochs[0].Members[:0] }),
		"joined missing":    edit(func(s *stateJSON) { s.Joined = s.Joined[1:] }),
		"joined twice":      edit(func(s *stateJSON) { s.Joined[1] = s.Joined[0] }),
		"joined future":     edit(func(s *stateJSON) { s.Joined[0].Epoch = 9 }),
	}
	for name, b := range cases {
		if _, err := ParseMemberState(b, nil); err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			wantErr(t, err, ErrMalformed)
		}
	}
	// Over the size bound of the limits it is parsed with: refused before
	// decoding.
	small := &Limits{MaxMembers: 3, MaxEpochs: 2}
	if _, err := ParseMemberState(good, small); err != nil {
		t.Fatalf("within the small limits: %v", err)
	}
	_, err := ParseMemberState(append(bytes.Repeat([]byte(" "), MaxStateSize(small)+1-len(good)), good...), small)
	if err == nil || !strings.Contains(err.Error(), "member state of") {
		t.Fatalf("over the size bound: %v", err)
	}
	// Over the epoch limit it is parsed with.
	_, err = ParseMemberState(good, &Limits{MaxEpochs: 1})
	wantErr(t, err, ErrMalformed)
}
