package wire_test

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/lanpeer/lanpeer/framing"
	"github.com/lanpeer/lanpeer/wire"
)

// Samples of the room operations: one typical message of each type.

func sampleRoomEntry(b byte) wire.RoomEntry {
	return wire.RoomEntry{
		Room: seq(b, wire.RoomIDSize), Name: []byte("lab"), Master: seq(b+0x10, wire.PeerIDSize),
		Suite: 1, Epoch: 3, Head: seq(b+0x20, wire.HashSize), Created: 1_764_036_000_000,
		Role: wire.RoleMember, Left: b%2 == 1,
	}
}

func sampleMemberEntry(b byte) wire.MemberEntry {
	return wire.MemberEntry{
		Peer: seq(b, wire.PeerIDSize), Role: wire.RoleMaster, KeyPackage: seq(b+0x40, wire.HashSize),
		Acked: 2, Left: b%2 == 1,
	}
}

func roomSamples() []namedMessage {
	room := seq(0x70, wire.RoomIDSize)
	return []namedMessage{
		{"PublishKeyPackage", &wire.PublishKeyPackage{KeyPackage: seq(0x01, 300)}},
		{"CreateRoom", &wire.CreateRoom{Commit: seq(0x02, 500)}},
		{"UploadWrappedKey", &wire.UploadWrappedKey{Room: room, Wrapped: seq(0x03, 270)}},
		{"ListRooms", &wire.ListRooms{After: seq(0x04, wire.RoomIDSize), Limit: 100}},
		{"RoomInfo", &wire.RoomInfo{Room: room, After: seq(0x05, wire.PeerIDSize), Limit: 1000}},
		{"CommitRoom", &wire.CommitRoom{Room: room, Commit: seq(0x06, 700)}},
		{"LeaveRoom", &wire.LeaveRoom{Room: room, Leave: seq(0x07, 200)}},
		{"DeleteRoom", &wire.DeleteRoom{Room: room}},
		{"SendMessage", &wire.SendMessage{Room: room, Message: seq(0x08, 600)}},
		{"ReadMessages", &wire.ReadMessages{Room: room, After: 41, Limit: 50}},
		{"FetchWrappedKey", &wire.FetchWrappedKey{Room: room, Epoch: 4}},
		{"AckEpoch", &wire.AckEpoch{Room: room, Epoch: 4}},
		{"FetchCommits", &wire.FetchCommits{Room: room, After: 2, Limit: 10}},
		{"FetchKeyPackage", &wire.FetchKeyPackage{Hash: seq(0x09, wire.HashSize)}},
		{"FetchLeave", &wire.FetchLeave{Room: room, Peer: seq(0x0a, wire.PeerIDSize)}},
		{"Ack", &wire.Ack{}},
		{"RoomList", &wire.RoomList{Rooms: []wire.RoomEntry{sampleRoomEntry(0x10), sampleRoomEntry(0x11)}}},
		{"RoomInfoReply", &wire.RoomInfoReply{
			Room: room, Name: []byte("lab"), Master: seq(0x12, wire.PeerIDSize), MasterKey: seq(0x1e, 44), Suite: 2, Epoch: 5,
			Head: seq(0x13, wire.HashSize), Created: 1_764_036_000_000, First: 1, Last: 99,
			Members: []wire.MemberEntry{sampleMemberEntry(0x14), sampleMemberEntry(0x15)}, More: true,
		}},
		{"MessageStored", &wire.MessageStored{Seq: 42, Stored: 1_764_036_000_001}},
		{"MessageList", &wire.MessageList{Messages: []wire.StoredMessage{
			{Seq: 42, Stored: 1_764_036_000_001, Blob: seq(0x16, 500)},
			{Seq: 43, Stored: 1_764_036_000_002, Blob: seq(0x17, 501)},
		}}},
		{"WrappedKeyReply", &wire.WrappedKeyReply{Wrapped: seq(0x18, 270)}},
		{"CommitList", &wire.CommitList{Commits: [][]byte{seq(0x19, 400), seq(0x1a, 468)}, Epoch: 7, MasterKey: seq(0x1d, 44)}},
		{"KeyPackageReply", &wire.KeyPackageReply{KeyPackage: seq(0x1b, 300)}},
		{"LeaveReply", &wire.LeaveReply{Leave: seq(0x1c, 200)}},
		{"RoomError", wire.NewRoomError(wire.ReasonStaleEpoch, 5)},
		{"MessagePush", &wire.MessagePush{Room: room, Seq: 43, Stored: 1_764_036_000_002, Blob: seq(0x1d, 501)}},
		{"KeySyncPush", &wire.KeySyncPush{Room: room, Epoch: 5}},
		{"MembershipPush", &wire.MembershipPush{Room: room, Epoch: 5, Event: wire.EventLeave, Peer: seq(0x1e, wire.PeerIDSize)}},
		{"PushesLost", &wire.PushesLost{Count: 3}},
	}
}

// roomEdgeSamples are valid room messages at their bounds.
func roomEdgeSamples() []namedMessage {
	room := seq(0x71, wire.RoomIDSize)
	maxEntry := sampleRoomEntry(0)
	maxEntry.Name = bytes.Repeat([]byte("n"), wire.MaxRoomNameSize)
	maxEntry.Epoch, maxEntry.Suite, maxEntry.Created, maxEntry.Role = wire.MaxSeq, 0xffff, math.MaxInt64, wire.RoleMaster
	rooms := make([]wire.RoomEntry, wire.MaxListLimit)
	for i := range rooms {
		rooms[i] = maxEntry
	}
	maxMember := sampleMemberEntry(0)
	maxMember.Acked = wire.MaxSeq
	members := make([]wire.MemberEntry, wire.MaxInfoMembers)
	for i := range members {
		members[i] = maxMember
	}
	msgs := make([]wire.StoredMessage, 5) // more than a control frame holds
	for i := range msgs {
		msgs[i] = wire.StoredMessage{Seq: uint64(i + 1), Stored: -1, Blob: seq(byte(i), wire.MaxMessageBlob)}
	}
	return []namedMessage{
		{"PublishKeyPackage/max", &wire.PublishKeyPackage{KeyPackage: seq(1, wire.MaxKeyPackageBlob)}},
		{"CreateRoom/max", &wire.CreateRoom{Commit: seq(2, wire.MaxCommitBlob)}},
		{"CreateRoom/min", &wire.CreateRoom{Commit: []byte{1}}},
		{"UploadWrappedKey/max", &wire.UploadWrappedKey{Room: room, Wrapped: seq(3, wire.MaxWrappedKeyBlob)}},
		{"ListRooms/first", &wire.ListRooms{Limit: 1}},
		{"ListRooms/max", &wire.ListRooms{After: seq(4, wire.RoomIDSize), Limit: wire.MaxListLimit}},
		{"RoomInfo/first", &wire.RoomInfo{Room: room, Limit: 1}},
		{"LeaveRoom/max", &wire.LeaveRoom{Room: room, Leave: seq(5, wire.MaxLeaveBlob)}},
		{"SendMessage/max", &wire.SendMessage{Room: room, Message: seq(6, wire.MaxMessageBlob)}},
		{"ReadMessages/max", &wire.ReadMessages{Room: room, After: wire.MaxSeq, Limit: wire.MaxListLimit}},
		{"ReadMessages/start", &wire.ReadMessages{Room: room, After: 0, Limit: 1}},
		{"FetchCommits/max", &wire.FetchCommits{Room: room, After: wire.MaxSeq, Limit: wire.MaxListLimit}},
		{"FetchWrappedKey/max", &wire.FetchWrappedKey{Room: room, Epoch: wire.MaxSeq}},
		{"FetchKeyPackage/peer", &wire.FetchKeyPackage{Peer: seq(7, wire.PeerIDSize)}},
		{"RoomList/empty", &wire.RoomList{}},
		{"RoomList/max", &wire.RoomList{Rooms: rooms}},
		{"RoomInfoReply/max", &wire.RoomInfoReply{
			Room: room, Name: bytes.Repeat([]byte("é"), wire.MaxRoomNameSize/2), Master: seq(8, wire.PeerIDSize), MasterKey: seq(8, wire.MaxIdentityKeySize),
			Suite: 0xffff, Epoch: wire.MaxSeq, Head: seq(9, wire.HashSize), Created: math.MinInt64,
			First: wire.MaxSeq, Last: wire.MaxSeq, Members: members,
		}},
		{"MessageList/empty", &wire.MessageList{}},
		{"MessageList/big", &wire.MessageList{Messages: msgs}},
		{"CommitList/empty", &wire.CommitList{Epoch: 1, MasterKey: seq(0x1d, 44)}},
		{"CommitList/max-commit", &wire.CommitList{Commits: [][]byte{seq(10, wire.MaxCommitBlob)}, Epoch: wire.MaxSeq, MasterKey: seq(0x1d, 44)}},
		{"RoomError/unknown-reason", &wire.RoomError{Code: 0xffff, Reason: 0xffff, Value: wire.MaxSeq, Message: "x"}},
		{"RoomError/empty-message", &wire.RoomError{Code: wire.CodeInternal, Reason: wire.ReasonInternal}},
		{"MessagePush/max", &wire.MessagePush{Room: room, Seq: wire.MaxSeq, Stored: math.MaxInt64, Blob: seq(11, wire.MaxMessageBlob)}},
		{"MembershipPush/delete", &wire.MembershipPush{Room: room, Epoch: 0, Event: wire.EventDelete}},
		{"MembershipPush/rotate", &wire.MembershipPush{Room: room, Epoch: wire.MaxSeq, Event: wire.EventRotate}},
		{"PushesLost/max", &wire.PushesLost{Count: wire.MaxSeq}},
	}
}

// onRequestStream reports whether t travels on request streams (the
// request frame class), rather than in control-class frames.
func onRequestStream(t wire.Type) bool {
	return wire.IsRoomRequest(t) || (t >= wire.TypeAck && t <= wire.TypeRoomError)
}

// maxPayload is the frame maximum of t's stream class.
func maxPayload(t wire.Type) int {
	if onRequestStream(t) {
		return wire.MaxRequestFrame
	}
	return framing.MaxControlFrame
}

func roomBoundCases() []boundCase {
	room := seq(0x70, wire.RoomIDSize)
	entry := func(f func(*wire.RoomEntry)) wire.Message {
		e := sampleRoomEntry(0)
		f(&e)
		return &wire.RoomList{Rooms: []wire.RoomEntry{sampleRoomEntry(1), e}}
	}
	member := func(f func(*wire.MemberEntry)) wire.Message {
		e := sampleMemberEntry(0)
		f(&e)
		return &wire.RoomInfoReply{Room: room, Name: []byte("x"), Master: seq(0, 32), MasterKey: seq(1, 44), Epoch: 1, Head: seq(0, 32),
			Members: []wire.MemberEntry{e}}
	}
	info := func(f func(*wire.RoomInfoReply)) wire.Message {
		m := &wire.RoomInfoReply{Room: room, Name: []byte("x"), Master: seq(0, 32), MasterKey: seq(1, 44), Epoch: 1, Head: seq(0, 32)}
		f(m)
		return m
	}
	return []boundCase{
		{"PublishKeyPackage empty", &wire.PublishKeyPackage{}, "kp", wire.ErrLength},
		{"PublishKeyPackage max+1", &wire.PublishKeyPackage{KeyPackage: seq(0, wire.MaxKeyPackageBlob+1)}, "kp", wire.ErrTooLong},
		{"CreateRoom empty", &wire.CreateRoom{}, "c", wire.ErrLength},
		{"CreateRoom max+1", &wire.CreateRoom{Commit: seq(0, wire.MaxCommitBlob+1)}, "c", wire.ErrTooLong},
		{"UploadWrappedKey room 15", &wire.UploadWrappedKey{Room: seq(0, 15), Wrapped: []byte{1}}, "r", wire.ErrLength},
		{"UploadWrappedKey room 17", &wire.UploadWrappedKey{Room: seq(0, 17), Wrapped: []byte{1}}, "r", wire.ErrTooLong},
		{"UploadWrappedKey no room", &wire.UploadWrappedKey{Wrapped: []byte{1}}, "r", wire.ErrLength},
		{"UploadWrappedKey max+1", &wire.UploadWrappedKey{Room: room, Wrapped: seq(0, wire.MaxWrappedKeyBlob+1)}, "w", wire.ErrTooLong},
		{"ListRooms after 15", &wire.ListRooms{After: seq(0, 15), Limit: 1}, "a", wire.ErrLength},
		{"ListRooms limit 0", &wire.ListRooms{Limit: 0}, "l", wire.ErrOutOfRange},
		{"ListRooms limit max+1", &wire.ListRooms{Limit: wire.MaxListLimit + 1}, "l", wire.ErrOutOfRange},
		{"RoomInfo after 31", &wire.RoomInfo{Room: room, After: seq(0, 31), Limit: 1}, "a", wire.ErrLength},
		{"RoomInfo limit max+1", &wire.RoomInfo{Room: room, Limit: wire.MaxInfoMembers + 1}, "l", wire.ErrOutOfRange},
		{"CommitRoom empty", &wire.CommitRoom{Room: room}, "c", wire.ErrLength},
		{"LeaveRoom max+1", &wire.LeaveRoom{Room: room, Leave: seq(0, wire.MaxLeaveBlob+1)}, "lr", wire.ErrTooLong},
		{"DeleteRoom no room", &wire.DeleteRoom{}, "r", wire.ErrLength},
		{"SendMessage max+1", &wire.SendMessage{Room: room, Message: seq(0, wire.MaxMessageBlob+1)}, "m", wire.ErrTooLong},
		{"ReadMessages after 2^53", &wire.ReadMessages{Room: room, After: wire.MaxSeq + 1, Limit: 1}, "a", wire.ErrOutOfRange},
		{"ReadMessages limit 0", &wire.ReadMessages{Room: room, Limit: 0}, "l", wire.ErrOutOfRange},
		{"FetchWrappedKey epoch 0", &wire.FetchWrappedKey{Room: room}, "e", wire.ErrOutOfRange},
		{"FetchWrappedKey epoch 2^53", &wire.FetchWrappedKey{Room: room, Epoch: wire.MaxSeq + 1}, "e", wire.ErrOutOfRange},
		{"AckEpoch epoch 0", &wire.AckEpoch{Room: room}, "e", wire.ErrOutOfRange},
		{"FetchCommits limit max+1", &wire.FetchCommits{Room: room, Limit: wire.MaxListLimit + 1}, "l", wire.ErrOutOfRange},
		{"FetchKeyPackage neither", &wire.FetchKeyPackage{}, "p", wire.ErrLength},
		{"FetchKeyPackage both", &wire.FetchKeyPackage{Hash: seq(0, 32), Peer: seq(0, 32)}, "p", wire.ErrLength},
		{"FetchKeyPackage hash 31", &wire.FetchKeyPackage{Hash: seq(0, 31)}, "h", wire.ErrLength},
		{"FetchLeave no peer", &wire.FetchLeave{Room: room}, "p", wire.ErrLength},

		{"RoomList room 15", entry(func(e *wire.RoomEntry) { e.Room = seq(0, 15) }), "rs.r", wire.ErrLength},
		{"RoomList name empty", entry(func(e *wire.RoomEntry) { e.Name = nil }), "rs.n", wire.ErrLength},
		{"RoomList name max+1", entry(func(e *wire.RoomEntry) { e.Name = seq(0, wire.MaxRoomNameSize+1) }), "rs.n", wire.ErrTooLong},
		{"RoomList epoch 0", entry(func(e *wire.RoomEntry) { e.Epoch = 0 }), "rs.e", wire.ErrOutOfRange},
		{"RoomList head 31", entry(func(e *wire.RoomEntry) { e.Head = seq(0, 31) }), "rs.h", wire.ErrLength},
		{"RoomList role 0", entry(func(e *wire.RoomEntry) { e.Role = 0 }), "rs.o", wire.ErrOutOfRange},
		{"RoomList role 3", entry(func(e *wire.RoomEntry) { e.Role = 3 }), "rs.o", wire.ErrOutOfRange},
		{"RoomList max+1", &wire.RoomList{Rooms: make([]wire.RoomEntry, wire.MaxListLimit+1)}, "rs", wire.ErrTooLong},
		{"RoomInfoReply member peer 31", member(func(e *wire.MemberEntry) { e.Peer = seq(0, 31) }), "ms.p", wire.ErrLength},
		{"RoomInfoReply member role 0", member(func(e *wire.MemberEntry) { e.Role = 0 }), "ms.o", wire.ErrOutOfRange},
		{"RoomInfoReply no master key", info(func(m *wire.RoomInfoReply) { m.MasterKey = nil }), "mk", wire.ErrLength},
		{"RoomInfoReply master key max+1", info(func(m *wire.RoomInfoReply) { m.MasterKey = seq(0, wire.MaxIdentityKeySize+1) }), "mk", wire.ErrTooLong},
		{"RoomInfoReply member key package empty", member(func(e *wire.MemberEntry) { e.KeyPackage = nil }), "ms.k", wire.ErrLength},
		{"RoomInfoReply member acked 2^53", member(func(e *wire.MemberEntry) { e.Acked = wire.MaxSeq + 1 }), "ms.ak", wire.ErrOutOfRange},
		{"RoomInfoReply members max+1", info(func(m *wire.RoomInfoReply) { m.Members = make([]wire.MemberEntry, wire.MaxInfoMembers+1) }), "ms", wire.ErrTooLong},
		{"RoomInfoReply epoch 0", info(func(m *wire.RoomInfoReply) { m.Epoch = 0 }), "e", wire.ErrOutOfRange},
		{"RoomInfoReply last 2^53", info(func(m *wire.RoomInfoReply) { m.Last = wire.MaxSeq + 1 }), "la", wire.ErrOutOfRange},
		{"MessageStored seq 0", &wire.MessageStored{}, "s", wire.ErrOutOfRange},
		{"MessageList seq 0", &wire.MessageList{Messages: []wire.StoredMessage{{Seq: 0, Blob: []byte{1}}}}, "ms.s", wire.ErrOutOfRange},
		{"MessageList blob empty", &wire.MessageList{Messages: []wire.StoredMessage{{Seq: 1}}}, "ms.b", wire.ErrLength},
		{"MessageList blob max+1", &wire.MessageList{Messages: []wire.StoredMessage{{Seq: 1, Blob: seq(0, wire.MaxMessageBlob+1)}}}, "ms.b", wire.ErrTooLong},
		{"WrappedKeyReply empty", &wire.WrappedKeyReply{}, "w", wire.ErrLength},
		{"CommitList epoch 0", &wire.CommitList{MasterKey: seq(0, 44)}, "e", wire.ErrOutOfRange},
		{"CommitList no master key", &wire.CommitList{Epoch: 1}, "mk", wire.ErrLength},
		{"CommitList master key max+1", &wire.CommitList{Epoch: 1, MasterKey: seq(0, wire.MaxIdentityKeySize+1)}, "mk", wire.ErrTooLong},
		{"CommitList empty commit", &wire.CommitList{Commits: [][]byte{{1}, nil}, Epoch: 1}, "cs", wire.ErrLength},
		{"CommitList commit max+1", &wire.CommitList{Commits: [][]byte{seq(0, wire.MaxCommitBlob+1)}, Epoch: 1}, "cs", wire.ErrTooLong},
		{"KeyPackageReply max+1", &wire.KeyPackageReply{KeyPackage: seq(0, wire.MaxKeyPackageBlob+1)}, "kp", wire.ErrTooLong},
		{"LeaveReply empty", &wire.LeaveReply{}, "lr", wire.ErrLength},
		{"RoomError code 0", &wire.RoomError{Reason: 1}, "c", wire.ErrOutOfRange},
		{"RoomError reason 0", &wire.RoomError{Code: 1}, "r", wire.ErrOutOfRange},
		{"RoomError value 2^53", &wire.RoomError{Code: 1, Reason: 1, Value: wire.MaxSeq + 1}, "n", wire.ErrOutOfRange},
		{"RoomError message newline", &wire.RoomError{Code: 1, Reason: 1, Message: "a\nb"}, "m", wire.ErrBadText},
		{"RoomError message max+1", &wire.RoomError{Code: 1, Reason: 1, Message: strings.Repeat("a", wire.MaxErrorMessageSize+1)}, "m", wire.ErrTooLong},
		{"MessagePush seq 0", &wire.MessagePush{Room: room, Blob: []byte{1}}, "s", wire.ErrOutOfRange},
		{"MessagePush blob empty", &wire.MessagePush{Room: room, Seq: 1}, "b", wire.ErrLength},
		{"KeySyncPush epoch 0", &wire.KeySyncPush{Room: room}, "e", wire.ErrOutOfRange},
		{"MembershipPush event 0", &wire.MembershipPush{Room: room, Epoch: 1}, "o", wire.ErrOutOfRange},
		{"MembershipPush event 7", &wire.MembershipPush{Room: room, Epoch: 1, Event: 7}, "o", wire.ErrOutOfRange},
		{"MembershipPush leave without peer", &wire.MembershipPush{Room: room, Epoch: 1, Event: wire.EventLeave}, "p", wire.ErrLength},
		{"MembershipPush rotate with peer", &wire.MembershipPush{Room: room, Epoch: 1, Event: wire.EventRotate, Peer: seq(0, 32)}, "p", wire.ErrTooLong},
		{"PushesLost 0", &wire.PushesLost{}, "n", wire.ErrOutOfRange},
	}
}

// TestRoomNestedDecoding: the elements of a list reply are maps with their
// own keys, each bounded and checked like a message's, and every failure
// inside one names the list and the element's key.
func TestRoomNestedDecoding(t *testing.T) {
	typ, kvs := entries(t, mustEncode(t, &wire.RoomList{Rooms: []wire.RoomEntry{sampleRoomEntry(0)}}))
	ekvs := func() []kv {
		_, e := entries(t, append([]byte{0}, mp(sampleRoomEntry(0))...))
		return e
	}()
	element := func(e []kv) []byte {
		// An array of one element: the element map as assemble builds it,
		// without its type byte.
		return append([]byte{0x91}, assemble(0, e)[1:]...)
	}
	if _, err := wire.Decode(assemble(typ, replace(kvs, "rs", element(ekvs)))); err != nil {
		t.Fatalf("reassembled list: %v", err)
	}
	for _, tc := range []struct {
		name   string
		list   []byte
		field  string
		reason error
	}{
		{"unknown element key", element(append(ekvs[:len(ekvs):len(ekvs)], kv{"zz", []byte{1}})), "rs", wire.ErrUnknownField},
		{"duplicate element key", element(append(ekvs[:len(ekvs):len(ekvs)], ekvs[0])), "rs.r", wire.ErrDuplicateField},
		{"missing element key", element(ekvs[1:]), "rs.r", wire.ErrMissingField},
		{"bool as integer", element(replace(ekvs, "lv", []byte{0x01})), "rs.lv", wire.ErrWrongType},
		{"bool as nil", element(replace(ekvs, "lv", []byte{0xc0})), "rs.lv", wire.ErrWrongType},
		{"name as str", element(replace(ekvs, "n", mp("lab"))), "rs.n", wire.ErrWrongType},
		{"element not a map", append([]byte{0x91, 0x01}, make([]byte, 64)...), "rs", wire.ErrWrongType},
		{"element nested array", append([]byte{0x91, 0x91, 0x80}, make([]byte, 64)...), "rs", wire.ErrWrongType},
		{"list as map", []byte{0x80}, "rs", wire.ErrWrongType},
		{"count over max", []byte{0xdc, 0x03, 0xe9}, "rs", wire.ErrTooLong},
		{"count over bytes left", []byte{0xdc, 0x00, 0x02, 0x80}, "rs", wire.ErrTruncated},
		{"huge count", []byte{0xdd, 0xff, 0xff, 0xff, 0xff}, "rs", wire.ErrTooLong},
	} {
		t.Run(tc.name, func(t *testing.T) {
			decodeFails(t, assemble(typ, replace(kvs, "rs", tc.list)), typ, tc.field, tc.reason)
		})
	}

	// A count within the maximum but beyond what the bytes left can hold
	// (each element map takes at least minMapSize bytes) is refused before
	// the slice is allocated.
	p := assemble(typ, replace(kvs, "rs", append([]byte{0xdc, 0x03, 0xe8}, bytes.Repeat([]byte{0x80}, 1000)...)))
	decodeFails(t, p, typ, "rs", wire.ErrTruncated)

	// Commits are a list of bin.
	ctyp, ckvs := entries(t, mustEncode(t, &wire.CommitList{Commits: [][]byte{{1}}, Epoch: 1, MasterKey: seq(0x1d, 44)}))
	decodeFails(t, assemble(ctyp, replace(ckvs, "cs", []byte{0x91, 0xa1, 'x'})), ctyp, "cs", wire.ErrWrongType)
	decodeFails(t, assemble(ctyp, replace(ckvs, "cs", []byte{0x91, 0xc6, 0x00, 0x10, 0x00, 0x01})), ctyp, "cs", wire.ErrTooLong)
	m, err := wire.Decode(assemble(ctyp, replace(ckvs, "cs", []byte{0xc0})))
	if err != nil || m.(*wire.CommitList).Commits != nil {
		t.Fatalf("nil commit list: %v %v", m, err)
	}

	// Ack is an empty map and nothing else.
	decodeFails(t, []byte{byte(wire.TypeAck), 0x81, 0xa1, 'x', 0x01}, wire.TypeAck, "", wire.ErrUnknownField)
	decodeFails(t, []byte{byte(wire.TypeAck), 0x90}, wire.TypeAck, "", wire.ErrWrongType)
	if b := mustEncode(t, &wire.Ack{}); !bytes.Equal(b, []byte{byte(wire.TypeAck), 0x80}) {
		t.Fatalf("Ack = %x, want 30 80", b)
	}
}

// TestRoomReasons: every reason has a stable, unique name, a fixed text a
// RoomError may carry, and a code that classes it; unknown reasons are
// accepted and classed as protocol.
func TestRoomReasons(t *testing.T) {
	names := map[string]bool{}
	for r := wire.RoomReason(1); r <= wire.MaxRoomReason; r++ {
		name := r.String()
		if names[name] || strings.HasPrefix(name, "RoomReason(") {
			t.Fatalf("reason %d: name %q missing or repeated", r, name)
		}
		names[name] = true
		e := wire.NewRoomError(r, 0)
		if e.Message != r.Text() || e.Code != r.Code() || e.Code == 0 {
			t.Fatalf("NewRoomError(%v) = %+v", r, e)
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("NewRoomError(%v): %v", r, err)
		}
	}
	if r := wire.MaxRoomReason + 1; r.String() != "RoomReason(24)" || r.Code() != wire.CodeProtocol || r.Text() != "unknown reason" {
		t.Fatalf("unknown reason: %v %v %q", r, r.Code(), r.Text())
	}
	m, err := wire.Decode(mustEncode(t, &wire.RoomError{Code: 999, Reason: 999, Message: "from the future"}))
	if err != nil || m.(*wire.RoomError).Reason != 999 {
		t.Fatalf("unknown reason: %v, %v", m, err)
	}
	for _, tc := range []struct {
		r    wire.RoomReason
		code wire.ErrorCode
	}{
		{wire.ReasonNotMember, wire.CodeUnauthorized},
		{wire.ReasonNotMaster, wire.CodeUnauthorized},
		{wire.ReasonNoRoom, wire.CodeNotFound},
		{wire.ReasonStaleEpoch, wire.CodeConflict},
		{wire.ReasonMessageIDTaken, wire.CodeConflict},
		{wire.ReasonTooLarge, wire.CodeTooLarge},
	} {
		if tc.r.Code() != tc.code {
			t.Errorf("%v is classed %v, want %v", tc.r, tc.r.Code(), tc.code)
		}
	}
	if !strings.Contains(wire.ReasonNoKeyPackage.Text(), "dial this host once") {
		t.Errorf("no-key-package text %q does not tell the invitee what to do", wire.ReasonNoKeyPackage.Text())
	}
}

// TestRoomTypes: the room types are named, requests are told apart from
// everything else, and a request never decodes as another type.
func TestRoomTypes(t *testing.T) {
	seen := map[wire.Type]bool{}
	for _, s := range roomSamples() {
		typ := s.m.Type()
		if seen[typ] {
			t.Fatalf("two samples of %v", typ)
		}
		seen[typ] = true
		if typ.String() != s.name {
			t.Errorf("type %#02x is named %q, want %q", uint8(typ), typ.String(), s.name)
		}
		want := strings.HasPrefix(reflect.TypeOf(s.m).Elem().Name(), "Fetch") ||
			map[string]bool{"PublishKeyPackage": true, "CreateRoom": true, "UploadWrappedKey": true, "ListRooms": true,
				"RoomInfo": true, "CommitRoom": true, "LeaveRoom": true, "DeleteRoom": true, "SendMessage": true,
				"ReadMessages": true, "AckEpoch": true}[s.name]
		if wire.IsRoomRequest(typ) != want {
			t.Errorf("IsRoomRequest(%v) = %v", typ, !want)
		}
	}
	if len(seen) != 29 {
		t.Fatalf("%d room types sampled, want 29", len(seen))
	}
	for _, typ := range []wire.Type{wire.TypeHello, wire.TypeError, wire.TypeAck, wire.TypeMessagePush, 0x42} {
		if wire.IsRoomRequest(typ) {
			t.Errorf("IsRoomRequest(%v) = true", typ)
		}
	}
}

// TestRoomDecodeRefusesOtherShapes: a request's payload under another
// request's type byte is refused (its keys are unknown there), so one
// request is never taken for another.
func TestRoomDecodeRefusesOtherShapes(t *testing.T) {
	samples := roomSamples()
	for _, a := range samples {
		pa := mustEncode(t, a.m)
		for _, b := range samples {
			if a.m.Type() == b.m.Type() {
				continue
			}
			p := append([]byte{byte(b.m.Type())}, pa[1:]...)
			m, err := wire.Decode(p)
			if err == nil {
				// Only shapes with identical key sets can cross.
				if !sameKeys(a.m, b.m) {
					t.Errorf("%s's payload decoded as %s: %+v", a.name, b.name, m)
				}
				continue
			}
			var de *wire.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("%v is not a *DecodeError", err)
			}
		}
	}
}

func sameKeys(a, b wire.Message) bool {
	ta, tb := reflect.TypeOf(a).Elem(), reflect.TypeOf(b).Elem()
	if ta.NumField() != tb.NumField() {
		return false
	}
	for i := 0; i < ta.NumField(); i++ {
		if ta.Field(i).Tag != tb.Field(i).Tag {
			return false
		}
	}
	return true
}
