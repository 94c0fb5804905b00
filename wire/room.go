package wire

import (
	"errors"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// Room operations (docs/PROTOCOL.md, "18. Room operations"): one request
// and its reply on a request stream, and the host's pushes on a notify
// stream. The signed room objects travel inside them as opaque blobs;
// package room verifies them, wire bounds only their sizes.

// Room constants (docs/PROTOCOL.md, "12. Constants"). The blob bounds are
// package room's (docs/PROTOCOL.md §16.10); a test in node keeps them in
// step.
const (
	// MaxRequestFrame is the largest frame on a request stream, in either
	// direction: the frame class of requests and replies, which carry
	// commits of up to MaxCommitBlob bytes. A responder may accept less
	// (node.Config.MaxRequestFrame); a requestor accepts replies up to it.
	MaxRequestFrame = 2 << 20

	RoomIDSize = 16 // a room id: 16 random bytes
	HashSize   = 32 // a key package or commit hash: SHA-256

	MaxRoomNameSize   = 128   // room name, bytes of UTF-8
	MaxKeyPackageBlob = 2857  // signed key package
	MaxWrappedKeyBlob = 1903  // signed wrapped room key
	MaxMessageBlob    = 16708 // signed, sealed room message
	MaxLeaveBlob      = 622   // signed leave request
	// MaxCommitBlob bounds a commit on the wire: the store's ceiling, a
	// commit of about 15,000 members. A host's own member limit is
	// usually far lower (1,000 members: 68,807 bytes).
	MaxCommitBlob = 1 << 20

	// MaxListLimit bounds a listing's limit and the elements of a list
	// reply (rooms, messages, commits).
	MaxListLimit = 1000
	// MaxInfoMembers bounds the members of one RoomInfoReply; a larger
	// room's member list comes in pages.
	MaxInfoMembers = 1000
)

// Message types of the room operations (docs/PROTOCOL.md, "4.1 Message
// types"). Requests go requestor → host on a request stream; the host
// answers each with its reply or a RoomError. Pushes go host → requestor
// on a notify stream.
const (
	TypePublishKeyPackage Type = 0x20
	TypeCreateRoom        Type = 0x21
	TypeUploadWrappedKey  Type = 0x22
	TypeListRooms         Type = 0x23
	TypeRoomInfo          Type = 0x24
	TypeCommitRoom        Type = 0x25
	TypeLeaveRoom         Type = 0x26
	TypeDeleteRoom        Type = 0x27
	TypeSendMessage       Type = 0x28
	TypeReadMessages      Type = 0x29
	TypeFetchWrappedKey   Type = 0x2a
	TypeAckEpoch          Type = 0x2b
	TypeFetchCommits      Type = 0x2c
	TypeFetchKeyPackage   Type = 0x2d
	TypeFetchLeave        Type = 0x2e

	TypeAck             Type = 0x30
	TypeRoomList        Type = 0x31
	TypeRoomInfoReply   Type = 0x32
	TypeMessageStored   Type = 0x33
	TypeMessageList     Type = 0x34
	TypeWrappedKeyReply Type = 0x35
	TypeCommitList      Type = 0x36
	TypeKeyPackageReply Type = 0x37
	TypeLeaveReply      Type = 0x38
	TypeRoomError       Type = 0x3f

	TypeMessagePush    Type = 0x50
	TypeKeySyncPush    Type = 0x51
	TypeMembershipPush Type = 0x52
	TypePushesLost     Type = 0x53
)

// roomTypes names the room message types and makes an empty message of
// each, for Decode.
var roomTypes = map[Type]struct {
	name string
	make func() Message
}{
	TypePublishKeyPackage: {"PublishKeyPackage", func() Message { return new(PublishKeyPackage) }},
	TypeCreateRoom:        {"CreateRoom", func() Message { return new(CreateRoom) }},
	TypeUploadWrappedKey:  {"UploadWrappedKey", func() Message { return new(UploadWrappedKey) }},
	TypeListRooms:         {"ListRooms", func() Message { return new(ListRooms) }},
	TypeRoomInfo:          {"RoomInfo", func() Message { return new(RoomInfo) }},
	TypeCommitRoom:        {"CommitRoom", func() Message { return new(CommitRoom) }},
	TypeLeaveRoom:         {"LeaveRoom", func() Message { return new(LeaveRoom) }},
	TypeDeleteRoom:        {"DeleteRoom", func() Message { return new(DeleteRoom) }},
	TypeSendMessage:       {"SendMessage", func() Message { return new(SendMessage) }},
	TypeReadMessages:      {"ReadMessages", func() Message { return new(ReadMessages) }},
	TypeFetchWrappedKey:   {"FetchWrappedKey", func() Message { return new(FetchWrappedKey) }},
	TypeAckEpoch:          {"AckEpoch", func() Message { return new(AckEpoch) }},
	TypeFetchCommits:      {"FetchCommits", func() Message { return new(FetchCommits) }},
	TypeFetchKeyPackage:   {"FetchKeyPackage", func() Message { return new(FetchKeyPackage) }},
	TypeFetchLeave:        {"FetchLeave", func() Message { return new(FetchLeave) }},
	TypeAck:               {"Ack", func() Message { return new(Ack) }},
	TypeRoomList:          {"RoomList", func() Message { return new(RoomList) }},
	TypeRoomInfoReply:     {"RoomInfoReply", func() Message { return new(RoomInfoReply) }},
	TypeMessageStored:     {"MessageStored", func() Message { return new(MessageStored) }},
	TypeMessageList:       {"MessageList", func() Message { return new(MessageList) }},
	TypeWrappedKeyReply:   {"WrappedKeyReply", func() Message { return new(WrappedKeyReply) }},
	TypeCommitList:        {"CommitList", func() Message { return new(CommitList) }},
	TypeKeyPackageReply:   {"KeyPackageReply", func() Message { return new(KeyPackageReply) }},
	TypeLeaveReply:        {"LeaveReply", func() Message { return new(LeaveReply) }},
	TypeRoomError:         {"RoomError", func() Message { return new(RoomError) }},
	TypeMessagePush:       {"MessagePush", func() Message { return new(MessagePush) }},
	TypeKeySyncPush:       {"KeySyncPush", func() Message { return new(KeySyncPush) }},
	TypeMembershipPush:    {"MembershipPush", func() Message { return new(MembershipPush) }},
	TypePushesLost:        {"PushesLost", func() Message { return new(PushesLost) }},
}

// Every room message decodes itself with a bounded decoder.
var (
	_ msgpack.CustomDecoder = (*PublishKeyPackage)(nil)
	_ msgpack.CustomDecoder = (*CreateRoom)(nil)
	_ msgpack.CustomDecoder = (*UploadWrappedKey)(nil)
	_ msgpack.CustomDecoder = (*ListRooms)(nil)
	_ msgpack.CustomDecoder = (*RoomInfo)(nil)
	_ msgpack.CustomDecoder = (*CommitRoom)(nil)
	_ msgpack.CustomDecoder = (*LeaveRoom)(nil)
	_ msgpack.CustomDecoder = (*DeleteRoom)(nil)
	_ msgpack.CustomDecoder = (*SendMessage)(nil)
	_ msgpack.CustomDecoder = (*ReadMessages)(nil)
	_ msgpack.CustomDecoder = (*FetchWrappedKey)(nil)
	_ msgpack.CustomDecoder = (*AckEpoch)(nil)
	_ msgpack.CustomDecoder = (*FetchCommits)(nil)
	_ msgpack.CustomDecoder = (*FetchKeyPackage)(nil)
	_ msgpack.CustomDecoder = (*FetchLeave)(nil)
	_ msgpack.CustomDecoder = (*Ack)(nil)
	_ msgpack.CustomDecoder = (*RoomList)(nil)
	_ msgpack.CustomDecoder = (*RoomInfoReply)(nil)
	_ msgpack.CustomDecoder = (*MessageStored)(nil)
	_ msgpack.CustomDecoder = (*MessageList)(nil)
	_ msgpack.CustomDecoder = (*WrappedKeyReply)(nil)
	_ msgpack.CustomDecoder = (*CommitList)(nil)
	_ msgpack.CustomDecoder = (*KeyPackageReply)(nil)
	_ msgpack.CustomDecoder = (*LeaveReply)(nil)
	_ msgpack.CustomDecoder = (*RoomError)(nil)
	_ msgpack.CustomDecoder = (*MessagePush)(nil)
	_ msgpack.CustomDecoder = (*KeySyncPush)(nil)
	_ msgpack.CustomDecoder = (*MembershipPush)(nil)
	_ msgpack.CustomDecoder = (*PushesLost)(nil)
)

// IsRoomRequest reports whether t is a request a requestor sends on a
// request stream.
func IsRoomRequest(t Type) bool { return t >= TypePublishKeyPackage && t <= TypeFetchLeave }

// Roles in RoomEntry.Role and MemberEntry.Role: store's numbers.
const (
	RoleMember uint16 = 1
	RoleMaster uint16 = 2
)

// Membership events in MembershipPush.Event. 1 to 4 are the operations of
// the commit that started the epoch (docs/PROTOCOL.md §16.3).
const (
	EventCreate uint16 = 1
	EventInvite uint16 = 2
	EventRemove uint16 = 3
	EventRotate uint16 = 4
	EventLeave  uint16 = 5 // a member asked to leave; Peer names it
	EventDelete uint16 = 6 // the master deleted the room

	maxEvent = EventDelete
)

// Helpers for the room messages' fields.

// checkRoomID requires a 16-byte room id.
func checkRoomID(t Type, key string, b []byte) error {
	return checkBytes(t, key, b, RoomIDSize, RoomIDSize)
}

// checkOptional requires b to be empty or exactly n bytes.
func checkOptional(t Type, key string, b []byte, n int) error {
	if len(b) == 0 {
		return nil
	}
	return checkBytes(t, key, b, n, n)
}

// checkRange requires lo <= v <= hi.
func checkRange(t Type, key string, v, lo, hi uint64) error {
	if v < lo || v > hi {
		return fieldError(t, key, ErrOutOfRange, "%d, want %d to %d", v, lo, hi)
	}
	return nil
}

// seq reads a uint53.
func (fd *fieldDecoder) seq() uint64 { return fd.uint(MaxSeq) }

// boolean reads a msgpack true or false.
func (fd *fieldDecoder) boolean() bool {
	c, ok := fd.peek()
	if !ok {
		return false
	}
	if c != msgpcode.True && c != msgpcode.False {
		fd.fail(ErrWrongType, "want bool")
		return false
	}
	v, err := fd.d.DecodeBool()
	if err != nil {
		fd.failRead(err)
		return false
	}
	return v
}

// list reads an array of at most max elements, each taking at least
// minElem bytes, and calls elem for each with its index. The count is
// checked against max and the bytes left before elem runs, so the caller
// may allocate n elements in start. nil and the empty array read as no
// elements.
func (fd *fieldDecoder) list(max, minElem int, start func(n int), elem func(i int)) {
	c, ok := fd.peek()
	if !ok {
		return
	}
	if c == msgpcode.Nil {
		if err := fd.d.DecodeNil(); err != nil {
			fd.failRead(err)
		}
		return
	}
	if !msgpcode.IsFixedArray(c) && c != msgpcode.Array16 && c != msgpcode.Array32 {
		fd.fail(ErrWrongType, "want array")
		return
	}
	n, err := fd.d.DecodeArrayLen()
	if err != nil {
		fd.failRead(err)
		return
	}
	if !fd.checkLen(n, max, minElem) || n == 0 {
		return
	}
	start(n)
	for i := 0; i < n && fd.err == nil; i++ {
		elem(i)
	}
}

// element decodes one map nested in the current field with keys; its
// errors are the current message's, naming the field as "outer.inner".
func (fd *fieldDecoder) element(keys []string, read func(sub *fieldDecoder)) {
	sub := newFieldDecoder(fd.d, fd.typ, keys)
	for sub.next() {
		read(sub)
	}
	if sub.err != nil && fd.err == nil {
		var de *DecodeError
		if errors.As(sub.err, &de) {
			outer := fd.key
			if de.Field != "" {
				outer += "." + de.Field
			}
			e := *de
			e.Field = outer
			fd.err = &e
			return
		}
		fd.err = sub.err
	}
}

// minMapSize is the fewest bytes a map with keys can take: a fixmap
// header, then each key as a fixstr and a one-byte value.
func minMapSize(keys []string) int {
	n := 1
	for _, k := range keys {
		n += 1 + len(k) + 1
	}
	return n
}

// decodeInto runs the custom decoder of a struct with one field decoder:
// it reads the map with read for each key, and stores the result with set
// once every key was read without error.
func decodeInto(d *msgpack.Decoder, t Type, keys []string, read func(fd *fieldDecoder), set func()) error {
	fd := newFieldDecoder(d, t, keys)
	for fd.next() {
		read(fd)
	}
	if fd.err != nil {
		return fd.err
	}
	set()
	return nil
}

// Requests.

// PublishKeyPackage publishes the requestor's key package (DESIGN.md §5):
// its owner must be the session's peer. Reply: Ack.
type PublishKeyPackage struct {
	KeyPackage []byte `msgpack:"kp"` // signed key package, 1..MaxKeyPackageBlob bytes
}

var publishKeyPackageKeys = []string{"kp"}

// Type returns TypePublishKeyPackage.
func (*PublishKeyPackage) Type() Type { return TypePublishKeyPackage }
func (*PublishKeyPackage) message()   {}

// DecodeMsgpack implements msgpack.CustomDecoder with every length bounded
// before allocation. It does not run Validate; use Decode.
func (m *PublishKeyPackage) DecodeMsgpack(d *msgpack.Decoder) error {
	var v PublishKeyPackage
	return decodeInto(d, m.Type(), publishKeyPackageKeys, func(fd *fieldDecoder) {
		v.KeyPackage = fd.bytes(MaxKeyPackageBlob)
	}, func() { *m = v })
}

// Validate checks the bounds of docs/PROTOCOL.md, "PublishKeyPackage".
func (m *PublishKeyPackage) Validate() error {
	return checkBytes(m.Type(), "kp", m.KeyPackage, 1, MaxKeyPackageBlob)
}

// CreateRoom creates a room from its create commit, signed by the
// requestor, who becomes its master. The wrapped keys follow in
// UploadWrappedKey requests. Reply: Ack.
type CreateRoom struct {
	Commit []byte `msgpack:"c"` // signed create commit, 1..MaxCommitBlob bytes
}

var createRoomKeys = []string{"c"}

// Type returns TypeCreateRoom.
func (*CreateRoom) Type() Type { return TypeCreateRoom }
func (*CreateRoom) message()   {}

// DecodeMsgpack implements msgpack.CustomDecoder with every length bounded
// before allocation. It does not run Validate; use Decode.
func (m *CreateRoom) DecodeMsgpack(d *msgpack.Decoder) error {
	var v CreateRoom
	return decodeInto(d, m.Type(), createRoomKeys, func(fd *fieldDecoder) {
		v.Commit = fd.bytes(MaxCommitBlob)
	}, func() { *m = v })
}

// Validate checks the bounds of docs/PROTOCOL.md, "CreateRoom".
func (m *CreateRoom) Validate() error {
	return checkBytes(m.Type(), "c", m.Commit, 1, MaxCommitBlob)
}

// UploadWrappedKey stores one wrapped room key, master only: one per
// request, never several in one frame. Reply: Ack.
type UploadWrappedKey struct {
	Room    []byte `msgpack:"r"` // RoomIDSize bytes
	Wrapped []byte `msgpack:"w"` // signed wrapped key, 1..MaxWrappedKeyBlob bytes
}

var uploadWrappedKeyKeys = []string{"r", "w"}

// Type returns TypeUploadWrappedKey.
func (*UploadWrappedKey) Type() Type { return TypeUploadWrappedKey }
func (*UploadWrappedKey) message()   {}

// DecodeMsgpack implements msgpack.CustomDecoder with every length bounded
// before allocation. It does not run Validate; use Decode.
func (m *UploadWrappedKey) DecodeMsgpack(d *msgpack.Decoder) error {
	var v UploadWrappedKey
	return decodeInto(d, m.Type(), uploadWrappedKeyKeys, func(fd *fieldDecoder) {
		switch fd.key {
		case "r":
			v.Room = fd.bytes(RoomIDSize)
		case "w":
			v.Wrapped = fd.bytes(MaxWrappedKeyBlob)
		}
	}, func() { *m = v })
}

// Validate checks the bounds of docs/PROTOCOL.md, "UploadWrappedKey".
func (m *UploadWrappedKey) Validate() error {
	if err := checkRoomID(m.Type(), "r", m.Room); err != nil {
		return err
	}
	return checkBytes(m.Type(), "w", m.Wrapped, 1, MaxWrappedKeyBlob)
}

// ListRooms lists the rooms the requestor is a member of, in byte order of
// their ids, after After. Reply: RoomList.
type ListRooms struct {
	After []byte `msgpack:"a"` // a room id, or empty to start at the beginning
	Limit uint16 `msgpack:"l"` // 1..MaxListLimit
}

var listRoomsKeys = []string{"a", "l"}

// Type returns TypeListRooms.
func (*ListRooms) Type() Type { return TypeListRooms }
func (*ListRooms) message()   {}

// DecodeMsgpack implements msgpack.CustomDecoder with every length bounded
// before allocation. It does not run Validate; use Decode.
func (m *ListRooms) DecodeMsgpack(d *msgpack.Decoder) error {
	var v ListRooms
	return decodeInto(d, m.Type(), listRoomsKeys, func(fd *fieldDecoder) {
		switch fd.key {
		case "a":
			v.After = fd.bytes(RoomIDSize)
		case "l":
			v.Limit = fd.uint16()
		}
	}, func() { *m = v })
}

// Validate checks the bounds of docs/PROTOCOL.md, "ListRooms".
func (m *ListRooms) Validate() error {
	if err := checkOptional(m.Type(), "a", m.After, RoomIDSize); err != nil {
		return err
	}
	return checkRange(m.Type(), "l", uint64(m.Limit), 1, MaxListLimit)
}

// RoomInfo asks for a room's state and a page of its members, those whose
// peer IDs follow After. Members only. Reply: RoomInfoReply.
type RoomInfo struct {
	Room  []byte `msgpack:"r"` // RoomIDSize bytes
	After []byte `msgpack:"a"` // a peer ID, or empty to start at the beginning
	Limit uint16 `msgpack:"l"` // 1..MaxInfoMembers
}

var roomInfoKeys = []string{"r", "a", "l"}

// Type returns TypeRoomInfo.
func (*RoomInfo) Type() Type { return TypeRoomInfo }
func (*RoomInfo) message()   {}

// DecodeMsgpack implements msgpack.CustomDecoder with every length bounded
// before allocation. It does not run Validate; use Decode.
func (m *RoomInfo) DecodeMsgpack(d *msgpack.Decoder) error {
	var v RoomInfo
	return decodeInto(d, m.Type(), roomInfoKeys, func(fd *fieldDecoder) {
		switch fd.key {
		case "r":
			v.Room = fd.bytes(RoomIDSize)
		case "a":
			v.After = fd.bytes(PeerIDSize)
		case "l":
			v.Limit = fd.uint16()
		}
	}, func() { *m = v })
}

// Validate checks the bounds of docs/PROTOCOL.md, "RoomInfo".
func (m *RoomInfo) Validate() error {
	t := m.Type()
	if err := checkRoomID(t, "r", m.Room); err != nil {
		return err
	}
	if err := checkOptional(t, "a", m.After, PeerIDSize); err != nil {
		return err
	}
	return checkRange(t, "l", uint64(m.Limit), 1, MaxInfoMembers)
}

// CommitRoom applies the master's next commit (invite, remove or rotate;
// a leave becomes a remove). The wrapped keys follow in UploadWrappedKey
// requests. Reply: Ack.
type CommitRoom struct {
	Room   []byte `msgpack:"r"` // RoomIDSize bytes
	Commit []byte `msgpack:"c"` // signed commit, 1..MaxCommitBlob bytes
}

var commitRoomKeys = []string{"r", "c"}

// Type returns TypeCommitRoom.
func (*CommitRoom) Type() Type { return TypeCommitRoom }
func (*CommitRoom) message()   {}

// DecodeMsgpack implements msgpack.CustomDecoder with every length bounded
// before allocation. It does not run Validate; use Decode.
func (m *CommitRoom) DecodeMsgpack(d *msgpack.Decoder) error {
	var v CommitRoom
	return decodeInto(d, m.Type(), commitRoomKeys, func(fd *fieldDecoder) {
		switch fd.key {
		case "r":
			v.Room = fd.bytes(RoomIDSize)
		case "c":
			v.Commit = fd.bytes(MaxCommitBlob)
		}
	}, func() { *m = v })
}

// Validate checks the bounds of docs/PROTOCOL.md, "CommitRoom".
func (m *CommitRoom) Validate() error {
	if err := checkRoomID(m.Type(), "r", m.Room); err != nil {
		return err
	}
	return checkBytes(m.Type(), "c", m.Commit, 1, MaxCommitBlob)
}

// LeaveRoom hands the host the requestor's signed leave request; the host
// applies it at once. Reply: Ack.
type LeaveRoom struct {
	Room  []byte `msgpack:"r"`  // RoomIDSize bytes
	Leave []byte `msgpack:"lr"` // signed leave request, 1..MaxLeaveBlob bytes
}

var leaveRoomKeys = []string{"r", "lr"}

// Type returns TypeLeaveRoom.
func (*LeaveRoom) Type() Type { return TypeLeaveRoom }
func (*LeaveRoom) message()   {}

// DecodeMsgpack implements msgpack.CustomDecoder with every length bounded
// before allocation. It does not run Validate; use Decode.
func (m *LeaveRoom) DecodeMsgpack(d *msgpack.Decoder) error {
	var v LeaveRoom
	return decodeInto(d, m.Type(), leaveRoomKeys, func(fd *fieldDecoder) {
		switch fd.key {
		case "r":
			v.Room = fd.bytes(RoomIDSize)
		case "lr":
			v.Leave = fd.bytes(MaxLeaveBlob)
		}
	}, func() { *m = v })
}

// Validate checks the bounds of docs/PROTOCOL.md, "LeaveRoom".
func (m *LeaveRoom) Validate() error {
	if err := checkRoomID(m.Type(), "r", m.Room); err != nil {
		return err
	}
	return checkBytes(m.Type(), "lr", m.Leave, 1, MaxLeaveBlob)
}

// DeleteRoom deletes a room and everything of it, master only. Reply: Ack.
type DeleteRoom struct {
	Room []byte `msgpack:"r"` // RoomIDSize bytes
}

var deleteRoomKeys = []string{"r"}

// Type returns TypeDeleteRoom.
func (*DeleteRoom) Type() Type { return TypeDeleteRoom }
func (*DeleteRoom) message()   {}

// DecodeMsgpack implements msgpack.CustomDecoder with every length bounded
// before allocation. It does not run Validate; use Decode.
func (m *DeleteRoom) DecodeMsgpack(d *msgpack.Decoder) error {
	var v DeleteRoom
	return decodeInto(d, m.Type(), deleteRoomKeys, func(fd *fieldDecoder) {
		v.Room = fd.bytes(RoomIDSize)
	}, func() { *m = v })
}

// Validate checks the bounds of docs/PROTOCOL.md, "DeleteRoom".
func (m *DeleteRoom) Validate() error { return checkRoomID(m.Type(), "r", m.Room) }

// SendMessage posts the requestor's signed, sealed message. Members only.
// Reply: MessageStored.
type SendMessage struct {
	Room    []byte `msgpack:"r"` // RoomIDSize bytes
	Message []byte `msgpack:"m"` // signed message, 1..MaxMessageBlob bytes
}

var sendMessageKeys = []string{"r", "m"}

// Type returns TypeSendMessage.
func (*SendMessage) Type() Type { return TypeSendMessage }
func (*SendMessage) message()   {}

// DecodeMsgpack implements msgpack.CustomDecoder with every length bounded
// before allocation. It does not run Validate; use Decode.
func (m *SendMessage) DecodeMsgpack(d *msgpack.Decoder) error {
	var v SendMessage
	return decodeInto(d, m.Type(), sendMessageKeys, func(fd *fieldDecoder) {
		switch fd.key {
		case "r":
			v.Room = fd.bytes(RoomIDSize)
		case "m":
			v.Message = fd.bytes(MaxMessageBlob)
		}
	}, func() { *m = v })
}

// Validate checks the bounds of docs/PROTOCOL.md, "SendMessage".
func (m *SendMessage) Validate() error {
	if err := checkRoomID(m.Type(), "r", m.Room); err != nil {
		return err
	}
	return checkBytes(m.Type(), "m", m.Message, 1, MaxMessageBlob)
}

// ReadMessages reads the messages with sequence numbers after After.
// Members only. Reply: MessageList.
type ReadMessages struct {
	Room  []byte `msgpack:"r"` // RoomIDSize bytes
	After uint64 `msgpack:"a"` // 0..MaxSeq: the cursor, 0 for the beginning
	Limit uint16 `msgpack:"l"` // 1..MaxListLimit
}

var readMessagesKeys = []string{"r", "a", "l"}

// Type returns TypeReadMessages.
func (*ReadMessages) Type() Type { return TypeReadMessages }
func (*ReadMessages) message()   {}

// DecodeMsgpack implements msgpack.CustomDecoder with every length bounded
// before allocation. It does not run Validate; use Decode.
func (m *ReadMessages) DecodeMsgpack(d *msgpack.Decoder) error {
	var v ReadMessages
	return decodeInto(d, m.Type(), readMessagesKeys, func(fd *fieldDecoder) {
		switch fd.key {
		case "r":
			v.Room = fd.bytes(RoomIDSize)
		case "a":
			v.After = fd.seq()
		case "l":
			v.Limit = fd.uint16()
		}
	}, func() { *m = v })
}

// Validate checks the bounds of docs/PROTOCOL.md, "ReadMessages".
func (m *ReadMessages) Validate() error {
	t := m.Type()
	if err := checkRoomID(t, "r", m.Room); err != nil {
		return err
	}
	if err := checkRange(t, "a", m.After, 0, MaxSeq); err != nil {
		return err
	}
	return checkRange(t, "l", uint64(m.Limit), 1, MaxListLimit)
}

// FetchWrappedKey asks for the requestor's own wrapped key of an epoch.
// Members only. Reply: WrappedKeyReply.
type FetchWrappedKey struct {
	Room  []byte `msgpack:"r"` // RoomIDSize bytes
	Epoch uint64 `msgpack:"e"` // 1..MaxSeq
}

var fetchWrappedKeyKeys = []string{"r", "e"}

// Type returns TypeFetchWrappedKey.
func (*FetchWrappedKey) Type() Type { return TypeFetchWrappedKey }
func (*FetchWrappedKey) message()   {}

// DecodeMsgpack implements msgpack.CustomDecoder with every length bounded
// before allocation. It does not run Validate; use Decode.
func (m *FetchWrappedKey) DecodeMsgpack(d *msgpack.Decoder) error {
	var v FetchWrappedKey
	return decodeInto(d, m.Type(), fetchWrappedKeyKeys, func(fd *fieldDecoder) {
		switch fd.key {
		case "r":
			v.Room = fd.bytes(RoomIDSize)
		case "e":
			v.Epoch = fd.seq()
		}
	}, func() { *m = v })
}

// Validate checks the bounds of docs/PROTOCOL.md, "FetchWrappedKey".
func (m *FetchWrappedKey) Validate() error {
	if err := checkRoomID(m.Type(), "r", m.Room); err != nil {
		return err
	}
	return checkRange(m.Type(), "e", m.Epoch, 1, MaxSeq)
}

// AckEpoch records that the requestor holds the room key of an epoch.
// Members only. Reply: Ack.
type AckEpoch struct {
	Room  []byte `msgpack:"r"` // RoomIDSize bytes
	Epoch uint64 `msgpack:"e"` // 1..MaxSeq
}

var ackEpochKeys = []string{"r", "e"}

// Type returns TypeAckEpoch.
func (*AckEpoch) Type() Type { return TypeAckEpoch }
func (*AckEpoch) message()   {}

// DecodeMsgpack implements msgpack.CustomDecoder with every length bounded
// before allocation. It does not run Validate; use Decode.
func (m *AckEpoch) DecodeMsgpack(d *msgpack.Decoder) error {
	var v AckEpoch
	return decodeInto(d, m.Type(), ackEpochKeys, func(fd *fieldDecoder) {
		switch fd.key {
		case "r":
			v.Room = fd.bytes(RoomIDSize)
		case "e":
			v.Epoch = fd.seq()
		}
	}, func() { *m = v })
}

// Validate checks the bounds of docs/PROTOCOL.md, "AckEpoch".
func (m *AckEpoch) Validate() error {
	if err := checkRoomID(m.Type(), "r", m.Room); err != nil {
		return err
	}
	return checkRange(m.Type(), "e", m.Epoch, 1, MaxSeq)
}

// FetchCommits asks for the commits after an epoch, so that a member can
// verify the chain. Members only. Reply: CommitList.
type FetchCommits struct {
	Room  []byte `msgpack:"r"` // RoomIDSize bytes
	After uint64 `msgpack:"a"` // 0..MaxSeq: the last epoch the member holds
	Limit uint16 `msgpack:"l"` // 1..MaxListLimit
}

var fetchCommitsKeys = []string{"r", "a", "l"}

// Type returns TypeFetchCommits.
func (*FetchCommits) Type() Type { return TypeFetchCommits }
func (*FetchCommits) message()   {}

// DecodeMsgpack implements msgpack.CustomDecoder with every length bounded
// before allocation. It does not run Validate; use Decode.
func (m *FetchCommits) DecodeMsgpack(d *msgpack.Decoder) error {
	var v FetchCommits
	return decodeInto(d, m.Type(), fetchCommitsKeys, func(fd *fieldDecoder) {
		switch fd.key {
		case "r":
			v.Room = fd.bytes(RoomIDSize)
		case "a":
			v.After = fd.seq()
		case "l":
			v.Limit = fd.uint16()
		}
	}, func() { *m = v })
}

// Validate checks the bounds of docs/PROTOCOL.md, "FetchCommits".
func (m *FetchCommits) Validate() error {
	t := m.Type()
	if err := checkRoomID(t, "r", m.Room); err != nil {
		return err
	}
	if err := checkRange(t, "a", m.After, 0, MaxSeq); err != nil {
		return err
	}
	return checkRange(t, "l", uint64(m.Limit), 1, MaxListLimit)
}

// FetchKeyPackage asks for a key package: by its hash (to verify a
// message's signer), or the latest unexpired one of a peer (to invite
// it). Exactly one of Hash and Peer is set. Reply: KeyPackageReply.
type FetchKeyPackage struct {
	Hash []byte `msgpack:"h"` // HashSize bytes, or empty
	Peer []byte `msgpack:"p"` // PeerIDSize bytes, or empty
}

var fetchKeyPackageKeys = []string{"h", "p"}

// Type returns TypeFetchKeyPackage.
func (*FetchKeyPackage) Type() Type { return TypeFetchKeyPackage }
func (*FetchKeyPackage) message()   {}

// DecodeMsgpack implements msgpack.CustomDecoder with every length bounded
// before allocation. It does not run Validate; use Decode.
func (m *FetchKeyPackage) DecodeMsgpack(d *msgpack.Decoder) error {
	var v FetchKeyPackage
	return decodeInto(d, m.Type(), fetchKeyPackageKeys, func(fd *fieldDecoder) {
		switch fd.key {
		case "h":
			v.Hash = fd.bytes(HashSize)
		case "p":
			v.Peer = fd.bytes(PeerIDSize)
		}
	}, func() { *m = v })
}

// Validate checks the bounds of docs/PROTOCOL.md, "FetchKeyPackage".
func (m *FetchKeyPackage) Validate() error {
	t := m.Type()
	if err := checkOptional(t, "h", m.Hash, HashSize); err != nil {
		return err
	}
	if err := checkOptional(t, "p", m.Peer, PeerIDSize); err != nil {
		return err
	}
	if (len(m.Hash) == 0) == (len(m.Peer) == 0) {
		return fieldError(t, "p", ErrLength, "exactly one of h and p is set")
	}
	return nil
}

// FetchLeave asks for a member's signed leave request, master only, so
// that the master's client can turn it into a remove commit. Reply:
// LeaveReply.
type FetchLeave struct {
	Room []byte `msgpack:"r"` // RoomIDSize bytes
	Peer []byte `msgpack:"p"` // PeerIDSize bytes
}

var fetchLeaveKeys = []string{"r", "p"}

// Type returns TypeFetchLeave.
func (*FetchLeave) Type() Type { return TypeFetchLeave }
func (*FetchLeave) message()   {}

// DecodeMsgpack implements msgpack.CustomDecoder with every length bounded
// before allocation. It does not run Validate; use Decode.
func (m *FetchLeave) DecodeMsgpack(d *msgpack.Decoder) error {
	var v FetchLeave
	return decodeInto(d, m.Type(), fetchLeaveKeys, func(fd *fieldDecoder) {
		switch fd.key {
		case "r":
			v.Room = fd.bytes(RoomIDSize)
		case "p":
			v.Peer = fd.bytes(PeerIDSize)
		}
	}, func() { *m = v })
}

// Validate checks the bounds of docs/PROTOCOL.md, "FetchLeave".
func (m *FetchLeave) Validate() error {
	if err := checkRoomID(m.Type(), "r", m.Room); err != nil {
		return err
	}
	return checkBytes(m.Type(), "p", m.Peer, PeerIDSize, PeerIDSize)
}

// Replies.

// Ack is the reply to a request that returns nothing: it was done. Its
// map is empty.
type Ack struct{}

// Type returns TypeAck.
func (*Ack) Type() Type { return TypeAck }
func (*Ack) message()   {}

// DecodeMsgpack implements msgpack.CustomDecoder: the map must be empty.
func (m *Ack) DecodeMsgpack(d *msgpack.Decoder) error {
	return decodeInto(d, m.Type(), nil, func(*fieldDecoder) {}, func() {})
}

// Validate has nothing to check.
func (m *Ack) Validate() error { return nil }

// RoomEntry is one room of a RoomList: the room's state on its host and
// the requestor's place in it.
type RoomEntry struct {
	Room    []byte `msgpack:"r"`  // RoomIDSize bytes
	Name    []byte `msgpack:"n"`  // 1..MaxRoomNameSize bytes of UTF-8, as the host holds it (check it before showing it)
	Master  []byte `msgpack:"m"`  // PeerIDSize bytes
	Suite   uint16 `msgpack:"s"`  // the room's AEAD suite id
	Epoch   uint64 `msgpack:"e"`  // 1..MaxSeq: the current epoch
	Head    []byte `msgpack:"h"`  // HashSize bytes: the current epoch's commit hash
	Created int64  `msgpack:"t"`  // Unix milliseconds
	Role    uint16 `msgpack:"o"`  // RoleMember or RoleMaster
	Left    bool   `msgpack:"lv"` // the requestor asked to leave and is not yet removed
}

var roomEntryKeys = []string{"r", "n", "m", "s", "e", "h", "t", "o", "lv"}

func (e *RoomEntry) decode(fd *fieldDecoder) {
	switch fd.key {
	case "r":
		e.Room = fd.bytes(RoomIDSize)
	case "n":
		e.Name = fd.bytes(MaxRoomNameSize)
	case "m":
		e.Master = fd.bytes(PeerIDSize)
	case "s":
		e.Suite = fd.uint16()
	case "e":
		e.Epoch = fd.seq()
	case "h":
		e.Head = fd.bytes(HashSize)
	case "t":
		e.Created = fd.int64()
	case "o":
		e.Role = fd.uint16()
	case "lv":
		e.Left = fd.boolean()
	}
}

func (e *RoomEntry) validate(t Type, key string) error {
	return firstError(
		checkRoomID(t, key+".r", e.Room),
		checkBytes(t, key+".n", e.Name, 1, MaxRoomNameSize),
		checkBytes(t, key+".m", e.Master, PeerIDSize, PeerIDSize),
		checkRange(t, key+".e", e.Epoch, 1, MaxSeq),
		checkBytes(t, key+".h", e.Head, HashSize, HashSize),
		checkRange(t, key+".o", uint64(e.Role), uint64(RoleMember), uint64(RoleMaster)),
	)
}

// firstError returns the first non-nil error.
func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// RoomList answers ListRooms: the rooms in byte order of their ids; fewer
// than the limit means there are no more.
type RoomList struct {
	Rooms []RoomEntry `msgpack:"rs"` // 0..MaxListLimit
}

var roomListKeys = []string{"rs"}

// Type returns TypeRoomList.
func (*RoomList) Type() Type { return TypeRoomList }
func (*RoomList) message()   {}

// DecodeMsgpack implements msgpack.CustomDecoder with every length and
// count bounded before allocation. It does not run Validate; use Decode.
func (m *RoomList) DecodeMsgpack(d *msgpack.Decoder) error {
	var v RoomList
	return decodeInto(d, m.Type(), roomListKeys, func(fd *fieldDecoder) {
		fd.list(MaxListLimit, minMapSize(roomEntryKeys), func(n int) { v.Rooms = make([]RoomEntry, n) },
			func(i int) { fd.element(roomEntryKeys, v.Rooms[i].decode) })
	}, func() { *m = v })
}

// Validate checks the bounds of docs/PROTOCOL.md, "RoomList".
func (m *RoomList) Validate() error {
	if len(m.Rooms) > MaxListLimit {
		return fieldError(m.Type(), "rs", ErrTooLong, "%d rooms, max %d", len(m.Rooms), MaxListLimit)
	}
	for i := range m.Rooms {
		if err := m.Rooms[i].validate(m.Type(), "rs"); err != nil {
			return err
		}
	}
	return nil
}

// MemberEntry is one member of a RoomInfoReply.
type MemberEntry struct {
	Peer       []byte `msgpack:"p"`  // PeerIDSize bytes
	Role       uint16 `msgpack:"o"`  // RoleMember or RoleMaster
	KeyPackage []byte `msgpack:"k"`  // HashSize bytes: the key package the current epoch lists
	Acked      uint64 `msgpack:"ak"` // 0..MaxSeq: the highest epoch whose key it acknowledged
	Left       bool   `msgpack:"lv"` // it asked to leave and is not yet removed
}

var memberEntryKeys = []string{"p", "o", "k", "ak", "lv"}

func (e *MemberEntry) decode(fd *fieldDecoder) {
	switch fd.key {
	case "p":
		e.Peer = fd.bytes(PeerIDSize)
	case "o":
		e.Role = fd.uint16()
	case "k":
		e.KeyPackage = fd.bytes(HashSize)
	case "ak":
		e.Acked = fd.seq()
	case "lv":
		e.Left = fd.boolean()
	}
}

func (e *MemberEntry) validate(t Type, key string) error {
	return firstError(
		checkBytes(t, key+".p", e.Peer, PeerIDSize, PeerIDSize),
		checkRange(t, key+".o", uint64(e.Role), uint64(RoleMember), uint64(RoleMaster)),
		checkBytes(t, key+".k", e.KeyPackage, HashSize, HashSize),
		checkRange(t, key+".ak", e.Acked, 0, MaxSeq),
	)
}

// RoomInfoReply answers RoomInfo: the room's state, the span of its kept
// history, and a page of its members in ascending order of peer ID.
type RoomInfoReply struct {
	Room   []byte `msgpack:"r"` // RoomIDSize bytes
	Name   []byte `msgpack:"n"` // 1..MaxRoomNameSize bytes
	Master []byte `msgpack:"m"` // PeerIDSize bytes
	// MasterKey is the master's identity key (SPKI DER,
	// 1..MaxIdentityKeySize bytes); its SHA-256 must be Master.
	MasterKey []byte        `msgpack:"mk"`
	Suite     uint16        `msgpack:"s"`  // the room's AEAD suite id
	Epoch     uint64        `msgpack:"e"`  // 1..MaxSeq
	Head      []byte        `msgpack:"h"`  // HashSize bytes
	Created   int64         `msgpack:"t"`  // Unix milliseconds
	First     uint64        `msgpack:"f"`  // 0..MaxSeq: the oldest kept message, 0 for none
	Last      uint64        `msgpack:"la"` // 0..MaxSeq: the latest message, 0 for none
	Members   []MemberEntry `msgpack:"ms"` // 0..MaxInfoMembers
	More      bool          `msgpack:"mo"` // more members follow the last one listed
}

var roomInfoReplyKeys = []string{"r", "n", "m", "mk", "s", "e", "h", "t", "f", "la", "ms", "mo"}

// Type returns TypeRoomInfoReply.
func (*RoomInfoReply) Type() Type { return TypeRoomInfoReply }
func (*RoomInfoReply) message()   {}

// DecodeMsgpack implements msgpack.CustomDecoder with every length and
// count bounded before allocation. It does not run Validate; use Decode.
func (m *RoomInfoReply) DecodeMsgpack(d *msgpack.Decoder) error {
	var v RoomInfoReply
	return decodeInto(d, m.Type(), roomInfoReplyKeys, func(fd *fieldDecoder) {
		switch fd.key {
		case "r":
			v.Room = fd.bytes(RoomIDSize)
		case "n":
			v.Name = fd.bytes(MaxRoomNameSize)
		case "m":
			v.Master = fd.bytes(PeerIDSize)
		case "mk":
			v.MasterKey = fd.bytes(MaxIdentityKeySize)
		case "s":
			v.Suite = fd.uint16()
		case "e":
			v.Epoch = fd.seq()
		case "h":
			v.Head = fd.bytes(HashSize)
		case "t":
			v.Created = fd.int64()
		case "f":
			v.First = fd.seq()
		case "la":
			v.Last = fd.seq()
		case "ms":
			fd.list(MaxInfoMembers, minMapSize(memberEntryKeys), func(n int) { v.Members = make([]MemberEntry, n) },
				func(i int) { fd.element(memberEntryKeys, v.Members[i].decode) })
		case "mo":
			v.More = fd.boolean()
		}
	}, func() { *m = v })
}

// Validate checks the bounds of docs/PROTOCOL.md, "RoomInfoReply".
func (m *RoomInfoReply) Validate() error {
	t := m.Type()
	err := firstError(
		checkRoomID(t, "r", m.Room),
		checkBytes(t, "n", m.Name, 1, MaxRoomNameSize),
		checkBytes(t, "m", m.Master, PeerIDSize, PeerIDSize),
		checkBytes(t, "mk", m.MasterKey, 1, MaxIdentityKeySize),
		checkRange(t, "e", m.Epoch, 1, MaxSeq),
		checkBytes(t, "h", m.Head, HashSize, HashSize),
		checkRange(t, "f", m.First, 0, MaxSeq),
		checkRange(t, "la", m.Last, 0, MaxSeq),
	)
	if err != nil {
		return err
	}
	if len(m.Members) > MaxInfoMembers {
		return fieldError(t, "ms", ErrTooLong, "%d members, max %d", len(m.Members), MaxInfoMembers)
	}
	for i := range m.Members {
		if err := m.Members[i].validate(t, "ms"); err != nil {
			return err
		}
	}
	return nil
}

// MessageStored answers SendMessage: the message's sequence number and
// when the host stored it. A retried send (same message id, same sender)
// gets the first send's answer back.
type MessageStored struct {
	Seq    uint64 `msgpack:"s"` // 1..MaxSeq
	Stored int64  `msgpack:"t"` // Unix milliseconds
}

var messageStoredKeys = []string{"s", "t"}

// Type returns TypeMessageStored.
func (*MessageStored) Type() Type { return TypeMessageStored }
func (*MessageStored) message()   {}

// DecodeMsgpack implements msgpack.CustomDecoder. It does not run
// Validate; use Decode.
func (m *MessageStored) DecodeMsgpack(d *msgpack.Decoder) error {
	var v MessageStored
	return decodeInto(d, m.Type(), messageStoredKeys, func(fd *fieldDecoder) {
		switch fd.key {
		case "s":
			v.Seq = fd.seq()
		case "t":
			v.Stored = fd.int64()
		}
	}, func() { *m = v })
}

// Validate checks the bounds of docs/PROTOCOL.md, "MessageStored".
func (m *MessageStored) Validate() error { return checkRange(m.Type(), "s", m.Seq, 1, MaxSeq) }

// StoredMessage is one message of a MessageList.
type StoredMessage struct {
	Seq    uint64 `msgpack:"s"` // 1..MaxSeq
	Stored int64  `msgpack:"t"` // Unix milliseconds
	Blob   []byte `msgpack:"b"` // the signed message as its sender sent it, 1..MaxMessageBlob bytes
}

var storedMessageKeys = []string{"s", "t", "b"}

func (e *StoredMessage) decode(fd *fieldDecoder) {
	switch fd.key {
	case "s":
		e.Seq = fd.seq()
	case "t":
		e.Stored = fd.int64()
	case "b":
		e.Blob = fd.bytes(MaxMessageBlob)
	}
}

func (e *StoredMessage) validate(t Type, key string) error {
	return firstError(
		checkRange(t, key+".s", e.Seq, 1, MaxSeq),
		checkBytes(t, key+".b", e.Blob, 1, MaxMessageBlob),
	)
}

// MessageList answers ReadMessages: messages in order of sequence number,
// consecutive from the cursor on. It holds fewer than the limit when the
// room has no more or the next would not fit the frame: read on after the
// last one; an empty list means the reader is at the end.
type MessageList struct {
	Messages []StoredMessage `msgpack:"ms"` // 0..MaxListLimit
}

var messageListKeys = []string{"ms"}

// Type returns TypeMessageList.
func (*MessageList) Type() Type { return TypeMessageList }
func (*MessageList) message()   {}

// DecodeMsgpack implements msgpack.CustomDecoder with every length and
// count bounded before allocation. It does not run Validate; use Decode.
func (m *MessageList) DecodeMsgpack(d *msgpack.Decoder) error {
	var v MessageList
	return decodeInto(d, m.Type(), messageListKeys, func(fd *fieldDecoder) {
		fd.list(MaxListLimit, minMapSize(storedMessageKeys), func(n int) { v.Messages = make([]StoredMessage, n) },
			func(i int) { fd.element(storedMessageKeys, v.Messages[i].decode) })
	}, func() { *m = v })
}

// Validate checks the bounds of docs/PROTOCOL.md, "MessageList".
func (m *MessageList) Validate() error {
	if len(m.Messages) > MaxListLimit {
		return fieldError(m.Type(), "ms", ErrTooLong, "%d messages, max %d", len(m.Messages), MaxListLimit)
	}
	for i := range m.Messages {
		if err := m.Messages[i].validate(m.Type(), "ms"); err != nil {
			return err
		}
	}
	return nil
}

// WrappedKeyReply answers FetchWrappedKey with the signed wrapped key.
type WrappedKeyReply struct {
	Wrapped []byte `msgpack:"w"` // 1..MaxWrappedKeyBlob bytes
}

var wrappedKeyReplyKeys = []string{"w"}

// Type returns TypeWrappedKeyReply.
func (*WrappedKeyReply) Type() Type { return TypeWrappedKeyReply }
func (*WrappedKeyReply) message()   {}

// DecodeMsgpack implements msgpack.CustomDecoder with every length bounded
// before allocation. It does not run Validate; use Decode.
func (m *WrappedKeyReply) DecodeMsgpack(d *msgpack.Decoder) error {
	var v WrappedKeyReply
	return decodeInto(d, m.Type(), wrappedKeyReplyKeys, func(fd *fieldDecoder) {
		v.Wrapped = fd.bytes(MaxWrappedKeyBlob)
	}, func() { *m = v })
}

// Validate checks the bounds of docs/PROTOCOL.md, "WrappedKeyReply".
func (m *WrappedKeyReply) Validate() error {
	return checkBytes(m.Type(), "w", m.Wrapped, 1, MaxWrappedKeyBlob)
}

// CommitList answers FetchCommits: signed commits in epoch order from
// the epoch after the cursor on, and the room's current epoch. It holds
// fewer than the limit when the room has no more or the next would not
// fit the frame (always at least one while there are more).
type CommitList struct {
	Commits [][]byte `msgpack:"cs"` // 0..MaxListLimit, each 1..MaxCommitBlob bytes
	Epoch   uint64   `msgpack:"e"`  // 1..MaxSeq: the room's current epoch
	// MasterKey is the master's identity key (SPKI DER,
	// 1..MaxIdentityKeySize bytes), the key the commits are signed with.
	MasterKey []byte `msgpack:"mk"`
}

var commitListKeys = []string{"cs", "e", "mk"}

// Type returns TypeCommitList.
func (*CommitList) Type() Type { return TypeCommitList }
func (*CommitList) message()   {}

// DecodeMsgpack implements msgpack.CustomDecoder with every length and
// count bounded before allocation. It does not run Validate; use Decode.
func (m *CommitList) DecodeMsgpack(d *msgpack.Decoder) error {
	var v CommitList
	return decodeInto(d, m.Type(), commitListKeys, func(fd *fieldDecoder) {
		switch fd.key {
		case "cs":
			// A non-empty bin takes at least three bytes: c4, its length, one byte.
			fd.list(MaxListLimit, 3, func(n int) { v.Commits = make([][]byte, n) },
				func(i int) { v.Commits[i] = fd.bytes(MaxCommitBlob) })
		case "e":
			v.Epoch = fd.seq()
		case "mk":
			v.MasterKey = fd.bytes(MaxIdentityKeySize)
		}
	}, func() { *m = v })
}

// Validate checks the bounds of docs/PROTOCOL.md, "CommitList".
func (m *CommitList) Validate() error {
	t := m.Type()
	if len(m.Commits) > MaxListLimit {
		return fieldError(t, "cs", ErrTooLong, "%d commits, max %d", len(m.Commits), MaxListLimit)
	}
	for _, c := range m.Commits {
		if err := checkBytes(t, "cs", c, 1, MaxCommitBlob); err != nil {
			return err
		}
	}
	return firstError(
		checkRange(t, "e", m.Epoch, 1, MaxSeq),
		checkBytes(t, "mk", m.MasterKey, 1, MaxIdentityKeySize),
	)
}

// KeyPackageReply answers FetchKeyPackage with the signed key package.
type KeyPackageReply struct {
	KeyPackage []byte `msgpack:"kp"` // 1..MaxKeyPackageBlob bytes
}

var keyPackageReplyKeys = []string{"kp"}

// Type returns TypeKeyPackageReply.
func (*KeyPackageReply) Type() Type { return TypeKeyPackageReply }
func (*KeyPackageReply) message()   {}

// DecodeMsgpack implements msgpack.CustomDecoder with every length bounded
// before allocation. It does not run Validate; use Decode.
func (m *KeyPackageReply) DecodeMsgpack(d *msgpack.Decoder) error {
	var v KeyPackageReply
	return decodeInto(d, m.Type(), keyPackageReplyKeys, func(fd *fieldDecoder) {
		v.KeyPackage = fd.bytes(MaxKeyPackageBlob)
	}, func() { *m = v })
}

// Validate checks the bounds of docs/PROTOCOL.md, "KeyPackageReply".
func (m *KeyPackageReply) Validate() error {
	return checkBytes(m.Type(), "kp", m.KeyPackage, 1, MaxKeyPackageBlob)
}

// LeaveReply answers FetchLeave with the member's signed leave request.
type LeaveReply struct {
	Leave []byte `msgpack:"lr"` // 1..MaxLeaveBlob bytes
}

var leaveReplyKeys = []string{"lr"}

// Type returns TypeLeaveReply.
func (*LeaveReply) Type() Type { return TypeLeaveReply }
func (*LeaveReply) message()   {}

// DecodeMsgpack implements msgpack.CustomDecoder with every length bounded
// before allocation. It does not run Validate; use Decode.
func (m *LeaveReply) DecodeMsgpack(d *msgpack.Decoder) error {
	var v LeaveReply
	return decodeInto(d, m.Type(), leaveReplyKeys, func(fd *fieldDecoder) {
		v.Leave = fd.bytes(MaxLeaveBlob)
	}, func() { *m = v })
}

// Validate checks the bounds of docs/PROTOCOL.md, "LeaveReply".
func (m *LeaveReply) Validate() error { return checkBytes(m.Type(), "lr", m.Leave, 1, MaxLeaveBlob) }

// RoomReason says why a host refused a room request (docs/PROTOCOL.md,
// "18.4 Refusals"): finer than the error code, which classes it. Its
// String form is a stable name. 0 is reserved and never sent; a receiver
// accepts reasons it does not know and goes by the code.
type RoomReason uint16

// Refusal reasons.
const (
	ReasonNoRoom            RoomReason = 1
	ReasonNotMember         RoomReason = 2
	ReasonNotMaster         RoomReason = 3
	ReasonLeft              RoomReason = 4
	ReasonNotOwner          RoomReason = 5
	ReasonStaleEpoch        RoomReason = 6  // Value: the room's current epoch
	ReasonCommitConflict    RoomReason = 7  // Value: the room's current epoch
	ReasonMessageIDTaken    RoomReason = 8  // the id belongs to another sender's message
	ReasonKeyConflict       RoomReason = 9  // another wrapped key is stored for that member and epoch
	ReasonMasterCannotLeave RoomReason = 10 // the master deletes the room instead
	ReasonNoKeyPackage      RoomReason = 11 // the peer must dial this host once
	ReasonNoWrappedKey      RoomReason = 12
	ReasonNotFound          RoomReason = 13
	ReasonHistoryTrimmed    RoomReason = 14 // Value: the oldest kept sequence number
	ReasonBadSignature      RoomReason = 15
	ReasonWrongKeyPackage   RoomReason = 16
	ReasonExpired           RoomReason = 17
	ReasonInvalid           RoomReason = 18
	ReasonTooManyMembers    RoomReason = 19
	ReasonTooLarge          RoomReason = 20
	ReasonFull              RoomReason = 21
	ReasonInternal          RoomReason = 22
	ReasonUnavailable       RoomReason = 23 // the host's store cannot be reached; retry later
)

var roomReasons = []struct {
	reason     RoomReason
	code       ErrorCode
	name, text string
}{
	{ReasonNoRoom, CodeNotFound, "no-room", "no such room on this host"},
	{ReasonNotMember, CodeUnauthorized, "not-member", "not a member of the room"},
	{ReasonNotMaster, CodeUnauthorized, "not-master", "only the room's master may do this"},
	{ReasonLeft, CodeUnauthorized, "left", "you have left the room"},
	{ReasonNotOwner, CodeUnauthorized, "not-owner", "the object names another peer than this session's"},
	{ReasonStaleEpoch, CodeConflict, "stale-epoch", "the room has a newer epoch: fetch its key and send again with the same message id"},
	{ReasonCommitConflict, CodeConflict, "commit-conflict", "the commit does not follow the room's latest commit"},
	{ReasonMessageIDTaken, CodeConflict, "message-id-taken", "another sender used this message id"},
	{ReasonKeyConflict, CodeConflict, "key-conflict", "another wrapped key is stored for that member and epoch"},
	{ReasonMasterCannotLeave, CodeConflict, "master-cannot-leave", "the master cannot leave its room: delete it instead"},
	{ReasonNoKeyPackage, CodeNotFound, "no-key-package", "no key package of that peer here: it must dial this host once"},
	{ReasonNoWrappedKey, CodeNotFound, "no-wrapped-key", "no wrapped key for you at that epoch"},
	{ReasonNotFound, CodeNotFound, "not-found", "not found"},
	{ReasonHistoryTrimmed, CodeNotFound, "history-trimmed", "history trimmed: read on after the oldest kept message"},
	{ReasonBadSignature, CodeBadSignature, "bad-signature", "a signed object does not verify"},
	{ReasonWrongKeyPackage, CodeConflict, "wrong-key-package", "not the key package the epoch lists"},
	{ReasonExpired, CodeConflict, "expired", "key package expired or not yet valid"},
	{ReasonInvalid, CodeProtocol, "invalid", "the request breaks a room rule"},
	{ReasonTooManyMembers, CodeTooLarge, "too-many-members", "too many members"},
	{ReasonTooLarge, CodeTooLarge, "too-large", "too large"},
	{ReasonFull, CodeBusy, "full", "the host is full"},
	{ReasonInternal, CodeInternal, "internal", "internal error"},
	{ReasonUnavailable, CodeBusy, "unavailable", "the host's store is unavailable: try again later"},
}

// MaxRoomReason is the largest reason this version defines.
const MaxRoomReason = ReasonUnavailable

// String returns the reason's stable name ("stale-epoch"), or
// RoomReason(N) for a reason this version does not define.
func (r RoomReason) String() string {
	for _, e := range roomReasons {
		if e.reason == r {
			return e.name
		}
	}
	return fmt.Sprintf("RoomReason(%d)", uint16(r))
}

// Text returns the fixed message a host puts in RoomError.Message for r,
// or "unknown reason".
func (r RoomReason) Text() string {
	for _, e := range roomReasons {
		if e.reason == r {
			return e.text
		}
	}
	return "unknown reason"
}

// Code returns the error code that classes r, or CodeProtocol for a
// reason this version does not define.
func (r RoomReason) Code() ErrorCode {
	for _, e := range roomReasons {
		if e.reason == r {
			return e.code
		}
	}
	return CodeProtocol
}

// RoomError is a host's refusal of a room request, in place of its reply
// (docs/PROTOCOL.md, "RoomError"); the host then closes the stream. Code
// classes the refusal as an Error's code would; Reason names it; Value
// carries the one number the reason defines (0 otherwise); Message is the
// reason's fixed text, never peer input.
type RoomError struct {
	Code    ErrorCode  `msgpack:"c"` // any value but 0
	Reason  RoomReason `msgpack:"r"` // any value but 0
	Value   uint64     `msgpack:"n"` // 0..MaxSeq
	Message string     `msgpack:"m"` // 0..MaxErrorMessageSize bytes of printable UTF-8
}

var roomErrorKeys = []string{"c", "r", "n", "m"}

// NewRoomError returns the RoomError of reason with its code, fixed text
// and value.
func NewRoomError(reason RoomReason, value uint64) *RoomError {
	return &RoomError{Code: reason.Code(), Reason: reason, Value: value, Message: reason.Text()}
}

// Type returns TypeRoomError.
func (*RoomError) Type() Type { return TypeRoomError }
func (*RoomError) message()   {}

// DecodeMsgpack implements msgpack.CustomDecoder with the text bounded
// before allocation. It does not run Validate; use Decode.
func (m *RoomError) DecodeMsgpack(d *msgpack.Decoder) error {
	var v RoomError
	return decodeInto(d, m.Type(), roomErrorKeys, func(fd *fieldDecoder) {
		switch fd.key {
		case "c":
			v.Code = ErrorCode(fd.uint16())
		case "r":
			v.Reason = RoomReason(fd.uint16())
		case "n":
			v.Value = fd.seq()
		case "m":
			v.Message = fd.text(MaxErrorMessageSize)
		}
	}, func() { *m = v })
}

// Validate checks the bounds of docs/PROTOCOL.md, "RoomError".
func (m *RoomError) Validate() error {
	t := m.Type()
	if m.Code == 0 {
		return fieldError(t, "c", ErrOutOfRange, "code 0 is reserved")
	}
	if m.Reason == 0 {
		return fieldError(t, "r", ErrOutOfRange, "reason 0 is reserved")
	}
	if err := checkRange(t, "n", m.Value, 0, MaxSeq); err != nil {
		return err
	}
	if len(m.Message) > MaxErrorMessageSize {
		return fieldError(t, "m", ErrTooLong, "%d bytes, max %d", len(m.Message), MaxErrorMessageSize)
	}
	if err := checkText([]byte(m.Message)); err != nil {
		return fieldError(t, "m", err, "")
	}
	return nil
}

// Pushes.

// MessagePush tells a member of a new message in one of its rooms and
// carries it, so the member needs no second round trip (a message blob
// always fits a control frame).
type MessagePush struct {
	Room   []byte `msgpack:"r"` // RoomIDSize bytes
	Seq    uint64 `msgpack:"s"` // 1..MaxSeq
	Stored int64  `msgpack:"t"` // Unix milliseconds
	Blob   []byte `msgpack:"b"` // the signed message, 1..MaxMessageBlob bytes
}

var messagePushKeys = []string{"r", "s", "t", "b"}

// Type returns TypeMessagePush.
func (*MessagePush) Type() Type { return TypeMessagePush }
func (*MessagePush) message()   {}

// DecodeMsgpack implements msgpack.CustomDecoder with every length bounded
// before allocation. It does not run Validate; use Decode.
func (m *MessagePush) DecodeMsgpack(d *msgpack.Decoder) error {
	var v MessagePush
	return decodeInto(d, m.Type(), messagePushKeys, func(fd *fieldDecoder) {
		switch fd.key {
		case "r":
			v.Room = fd.bytes(RoomIDSize)
		case "s":
			v.Seq = fd.seq()
		case "t":
			v.Stored = fd.int64()
		case "b":
			v.Blob = fd.bytes(MaxMessageBlob)
		}
	}, func() { *m = v })
}

// Validate checks the bounds of docs/PROTOCOL.md, "MessagePush".
func (m *MessagePush) Validate() error {
	t := m.Type()
	return firstError(
		checkRoomID(t, "r", m.Room),
		checkRange(t, "s", m.Seq, 1, MaxSeq),
		checkBytes(t, "b", m.Blob, 1, MaxMessageBlob),
	)
}

// KeySyncPush asks a member to fetch its wrapped key of a new epoch (the
// master uploaded it) and acknowledge it.
type KeySyncPush struct {
	Room  []byte `msgpack:"r"` // RoomIDSize bytes
	Epoch uint64 `msgpack:"e"` // 1..MaxSeq
}

var keySyncPushKeys = []string{"r", "e"}

// Type returns TypeKeySyncPush.
func (*KeySyncPush) Type() Type { return TypeKeySyncPush }
func (*KeySyncPush) message()   {}

// DecodeMsgpack implements msgpack.CustomDecoder. It does not run
// Validate; use Decode.
func (m *KeySyncPush) DecodeMsgpack(d *msgpack.Decoder) error {
	var v KeySyncPush
	return decodeInto(d, m.Type(), keySyncPushKeys, func(fd *fieldDecoder) {
		switch fd.key {
		case "r":
			v.Room = fd.bytes(RoomIDSize)
		case "e":
			v.Epoch = fd.seq()
		}
	}, func() { *m = v })
}

// Validate checks the bounds of docs/PROTOCOL.md, "KeySyncPush".
func (m *KeySyncPush) Validate() error {
	if err := checkRoomID(m.Type(), "r", m.Room); err != nil {
		return err
	}
	return checkRange(m.Type(), "e", m.Epoch, 1, MaxSeq)
}

// MembershipPush tells a member that its room changed: a commit started a
// new epoch (fetch the commits), a member asked to leave, or the room was
// deleted.
type MembershipPush struct {
	Room  []byte `msgpack:"r"` // RoomIDSize bytes
	Epoch uint64 `msgpack:"e"` // 0..MaxSeq: the room's epoch after the event (0 after delete)
	Event uint16 `msgpack:"o"` // EventCreate..EventDelete
	Peer  []byte `msgpack:"p"` // PeerIDSize bytes: the leaving member for EventLeave; empty otherwise
}

var membershipPushKeys = []string{"r", "e", "o", "p"}

// Type returns TypeMembershipPush.
func (*MembershipPush) Type() Type { return TypeMembershipPush }
func (*MembershipPush) message()   {}

// DecodeMsgpack implements msgpack.CustomDecoder with every length bounded
// before allocation. It does not run Validate; use Decode.
func (m *MembershipPush) DecodeMsgpack(d *msgpack.Decoder) error {
	var v MembershipPush
	return decodeInto(d, m.Type(), membershipPushKeys, func(fd *fieldDecoder) {
		switch fd.key {
		case "r":
			v.Room = fd.bytes(RoomIDSize)
		case "e":
			v.Epoch = fd.seq()
		case "o":
			v.Event = fd.uint16()
		case "p":
			v.Peer = fd.bytes(PeerIDSize)
		}
	}, func() { *m = v })
}

// Validate checks the bounds of docs/PROTOCOL.md, "MembershipPush".
func (m *MembershipPush) Validate() error {
	t := m.Type()
	if err := firstError(
		checkRoomID(t, "r", m.Room),
		checkRange(t, "e", m.Epoch, 0, MaxSeq),
		checkRange(t, "o", uint64(m.Event), uint64(EventCreate), uint64(maxEvent)),
	); err != nil {
		return err
	}
	if m.Event == EventLeave {
		return checkBytes(t, "p", m.Peer, PeerIDSize, PeerIDSize)
	}
	return checkBytes(t, "p", m.Peer, 0, 0)
}

// PushesLost tells a member that the host dropped pushes for it (it did
// not read them fast enough): catch up by cursor, and fetch commits and
// wrapped keys.
type PushesLost struct {
	Count uint64 `msgpack:"n"` // 1..MaxSeq: pushes dropped since the last PushesLost
}

var pushesLostKeys = []string{"n"}

// Type returns TypePushesLost.
func (*PushesLost) Type() Type { return TypePushesLost }
func (*PushesLost) message()   {}

// DecodeMsgpack implements msgpack.CustomDecoder. It does not run
// Validate; use Decode.
func (m *PushesLost) DecodeMsgpack(d *msgpack.Decoder) error {
	var v PushesLost
	return decodeInto(d, m.Type(), pushesLostKeys, func(fd *fieldDecoder) {
		v.Count = fd.seq()
	}, func() { *m = v })
}

// Validate checks the bounds of docs/PROTOCOL.md, "PushesLost".
func (m *PushesLost) Validate() error { return checkRange(m.Type(), "n", m.Count, 1, MaxSeq) }
