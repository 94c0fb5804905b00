package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/room"
	"github.com/lanpeer/lanpeer/store"
	"github.com/lanpeer/lanpeer/wire"
)

// The TCP front end of the room operations (docs/PROTOCOL.md, "18. Room
// operations"): a request stream carries one request and its reply or
// RoomError; pushes travel on notify streams (Service.pushLoop).

// replyBudget is how many bytes of messages or commits one reply holds:
// the request class's frame, less room for the reply's own fields.
const replyBudget = wire.MaxRequestFrame - 64<<10

// Per-element overhead of a list reply, beyond the blob: the element's
// map, keys and integers.
const (
	messageOverhead = 40
	commitOverhead  = 8
)

var _ Handler = (*Service)(nil)

// ServeStream serves one request stream: it reads the request (within
// the request timeout), calls the operation with the session's peer as
// the caller, and writes the reply or a RoomError. A payload that is not
// a room request gets an Error (protocol, or too-large for a field over
// its bound).
func (s *Service) ServeStream(ctx context.Context, st *Stream) {
	_ = st.SetReadDeadline(time.Now().Add(s.requestTimeout))
	p, err := st.ReadFrame()
	if err != nil {
		return // framing errors were answered by the stream; EOF: no request
	}
	m, err := wire.Decode(p)
	if err != nil {
		code := wire.CodeProtocol
		var de *wire.DecodeError
		if errors.As(err, &de) {
			code = de.Code()
		}
		s.log.Debug("bad request", "peer", st.Conn().Peer().Short(), "err", err)
		st.Fail(code)
		return
	}
	if !wire.IsRoomRequest(m.Type()) {
		s.log.Debug("not a room request", "peer", st.Conn().Peer().Short(), "type", m.Type())
		st.Fail(wire.CodeProtocol)
		return
	}
	reply := s.handle(ctx, st.Conn().PeerKey(), m)
	b, err := wire.Encode(reply)
	if err != nil {
		s.log.Error("encoding a reply", "type", reply.Type(), "err", err)
		st.Fail(wire.CodeInternal)
		return
	}
	_ = st.SetWriteDeadline(time.Now().Add(s.requestTimeout))
	if err := st.WriteFrame(b); err != nil {
		s.log.Debug("writing a reply", "peer", st.Conn().Peer().Short(), "err", err)
	}
}

// handle runs one decoded request and returns its reply or RoomError.
func (s *Service) handle(ctx context.Context, caller *cryptosuite.PublicKey, m wire.Message) wire.Message {
	reply, err := s.dispatch(ctx, caller, m)
	if err != nil {
		re := roomErrorFor(err)
		if re.Reason == wire.ReasonInternal || re.Reason == wire.ReasonUnavailable {
			s.log.Warn("room request failed", "type", m.Type(), "peer", caller.PeerID().Short(), "err", err)
		} else {
			s.log.Debug("room request refused", "type", m.Type(), "peer", caller.PeerID().Short(), "err", err)
		}
		return re
	}
	return reply
}

var ack = &wire.Ack{}

func (s *Service) dispatch(ctx context.Context, caller *cryptosuite.PublicKey, m wire.Message) (wire.Message, error) {
	switch r := m.(type) {
	case *wire.PublishKeyPackage:
		return ack, s.PublishKeyPackage(ctx, caller, r.KeyPackage)
	case *wire.CreateRoom:
		_, err := s.CreateRoom(ctx, caller, r.Commit)
		return ack, err
	case *wire.UploadWrappedKey:
		return ack, s.UploadWrappedKey(ctx, caller, store.RoomID(r.Room), r.Wrapped)
	case *wire.ListRooms:
		var after store.RoomID
		copy(after[:], r.After)
		rooms, err := s.ListRooms(ctx, caller, after, int(r.Limit))
		if err != nil {
			return nil, err
		}
		out := &wire.RoomList{}
		for _, l := range rooms {
			role := wire.RoleMember
			if l.Role == store.RoleMaster {
				role = wire.RoleMaster
			}
			out.Rooms = append(out.Rooms, wire.RoomEntry{
				Room: l.Room.ID[:], Name: []byte(l.Room.Name), Master: l.Room.Master[:], Suite: l.Room.Suite,
				Epoch: l.Room.Epoch, Head: l.Room.Head[:], Created: l.Room.Created.UnixMilli(), Role: role, Left: l.Left,
			})
		}
		return out, nil
	case *wire.RoomInfo:
		var after cryptosuite.PeerID
		copy(after[:], r.After)
		info, err := s.RoomInfo(ctx, caller, store.RoomID(r.Room), after, int(r.Limit))
		if err != nil {
			return nil, err
		}
		out := &wire.RoomInfoReply{
			Room: info.Room.ID[:], Name: []byte(info.Room.Name), Master: info.Room.Master[:], MasterKey: info.MasterKey.SPKI(), Suite: info.Room.Suite,
			Epoch: info.Room.Epoch, Head: info.Room.Head[:], Created: info.Room.Created.UnixMilli(),
			First: info.Span.First, Last: info.Span.Last, More: info.More,
		}
		for _, mi := range info.Members {
			role := wire.RoleMember
			if mi.Role == store.RoleMaster {
				role = wire.RoleMaster
			}
			out.Members = append(out.Members, wire.MemberEntry{
				Peer: mi.Peer[:], Role: role, KeyPackage: mi.KeyPackage[:], Acked: mi.AckedEpoch, Left: mi.Left,
			})
		}
		return out, nil
	case *wire.CommitRoom:
		_, err := s.Commit(ctx, caller, store.RoomID(r.Room), r.Commit)
		return ack, err
	case *wire.LeaveRoom:
		return ack, s.Leave(ctx, caller, store.RoomID(r.Room), r.Leave)
	case *wire.DeleteRoom:
		return ack, s.Delete(ctx, caller, store.RoomID(r.Room))
	case *wire.SendMessage:
		sm, err := s.Send(ctx, caller, store.RoomID(r.Room), r.Message)
		if err != nil {
			return nil, err
		}
		return &wire.MessageStored{Seq: sm.Seq, Stored: sm.Stored.UnixMilli()}, nil
	case *wire.ReadMessages:
		ms, err := s.Read(ctx, caller, store.RoomID(r.Room), r.After, int(r.Limit))
		if err != nil {
			return nil, err
		}
		out := &wire.MessageList{}
		size := 0
		for _, m := range ms {
			// Consecutive from the cursor: stop at the first that does
			// not fit; the reader reads on after the last one listed.
			if size += len(m.Blob) + messageOverhead; size > replyBudget && len(out.Messages) > 0 {
				break
			}
			out.Messages = append(out.Messages, wire.StoredMessage{Seq: m.Seq, Stored: m.Stored.UnixMilli(), Blob: m.Blob})
		}
		return out, nil
	case *wire.FetchWrappedKey:
		w, err := s.FetchWrappedKey(ctx, caller, store.RoomID(r.Room), r.Epoch)
		if err != nil {
			return nil, err
		}
		return &wire.WrappedKeyReply{Wrapped: w}, nil
	case *wire.AckEpoch:
		return ack, s.Ack(ctx, caller, store.RoomID(r.Room), r.Epoch)
	case *wire.FetchCommits:
		cs, epoch, err := s.FetchCommits(ctx, caller, store.RoomID(r.Room), r.After, int(r.Limit))
		if err != nil {
			return nil, err
		}
		mk, err := s.roomMasterKey(ctx, store.RoomID(r.Room))
		if err != nil {
			return nil, err
		}
		out := &wire.CommitList{Epoch: epoch, MasterKey: mk.SPKI()}
		size := 0
		for _, c := range cs {
			if size += len(c) + commitOverhead; size > replyBudget && len(out.Commits) > 0 {
				break
			}
			out.Commits = append(out.Commits, c)
		}
		return out, nil
	case *wire.FetchKeyPackage:
		var (
			kp  []byte
			err error
		)
		if len(r.Hash) != 0 {
			kp, err = s.FetchKeyPackage(ctx, caller, [32]byte(r.Hash))
		} else {
			kp, err = s.LatestKeyPackage(ctx, caller, cryptosuite.PeerID(r.Peer))
		}
		if err != nil {
			return nil, err
		}
		return &wire.KeyPackageReply{KeyPackage: kp}, nil
	case *wire.FetchLeave:
		lr, err := s.FetchLeave(ctx, caller, store.RoomID(r.Room), cryptosuite.PeerID(r.Peer))
		if err != nil {
			return nil, err
		}
		return &wire.LeaveReply{Leave: lr}, nil
	}
	return nil, fmt.Errorf("%w: %v is not a room request", room.ErrBadRequest, m.Type())
}

// roomErrorFor maps an operation's error to the RoomError the host sends
// (docs/PROTOCOL.md §18.4). Errors no reason names (a store that failed,
// a context that ended) are internal.
func roomErrorFor(err error) *wire.RoomError {
	var ee *room.EpochError
	if errors.As(err, &ee) {
		if errors.Is(ee.Err, room.ErrOldEpoch) {
			return wire.NewRoomError(wire.ReasonStaleEpoch, ee.Current)
		}
		return wire.NewRoomError(wire.ReasonCommitConflict, ee.Current)
	}
	var tr *store.HistoryTrimmedError
	if errors.As(err, &tr) {
		return wire.NewRoomError(wire.ReasonHistoryTrimmed, tr.Oldest)
	}
	for _, e := range reasonErrors {
		if errors.Is(err, e.err) {
			return wire.NewRoomError(e.reason, 0)
		}
	}
	return wire.NewRoomError(wire.ReasonInternal, 0)
}

// reasonErrors maps errors to reasons, first match wins; the first error
// of each reason is what a client's *RoomError unwraps to.
var reasonErrors = []struct {
	err    error
	reason wire.RoomReason
}{
	{room.ErrNoRoom, wire.ReasonNoRoom},
	{room.ErrNotMember, wire.ReasonNotMember},
	{room.ErrNotMaster, wire.ReasonNotMaster},
	{room.ErrLeft, wire.ReasonLeft},
	{room.ErrNotOwner, wire.ReasonNotOwner},
	{room.ErrOldEpoch, wire.ReasonStaleEpoch},
	{room.ErrCommitConflict, wire.ReasonCommitConflict},
	{room.ErrMessageIDTaken, wire.ReasonMessageIDTaken},
	{room.ErrKeyConflict, wire.ReasonKeyConflict},
	{room.ErrMasterCannotLeave, wire.ReasonMasterCannotLeave},
	{room.ErrMissingKeyPackage, wire.ReasonNoKeyPackage},
	{room.ErrNoWrappedKey, wire.ReasonNoWrappedKey},
	{room.ErrNotFound, wire.ReasonNotFound},
	{store.ErrHistoryTrimmed, wire.ReasonHistoryTrimmed},
	{room.ErrBadSignature, wire.ReasonBadSignature},
	{room.ErrForgedCommit, wire.ReasonBadSignature},
	{room.ErrWrongKeyPackage, wire.ReasonWrongKeyPackage},
	{room.ErrKeyPackageExpired, wire.ReasonExpired},
	{room.ErrKeyPackageNotYetValid, wire.ReasonExpired},
	{room.ErrTooManyMembers, wire.ReasonTooManyMembers},
	{store.ErrTooLarge, wire.ReasonTooLarge},
	{store.ErrFull, wire.ReasonFull},
	{store.ErrUnavailable, wire.ReasonUnavailable},
	{room.ErrBadRequest, wire.ReasonInvalid},
	{room.ErrMalformed, wire.ReasonInvalid},
	{room.ErrBadCommit, wire.ReasonInvalid},
	{room.ErrWrongRoom, wire.ReasonInvalid},
	{room.ErrUnknownEpoch, wire.ReasonInvalid},
	{room.ErrChainBroken, wire.ReasonInvalid},
	{room.ErrStaleLeave, wire.ReasonInvalid},
	{room.ErrBadText, wire.ReasonInvalid},
	{store.ErrInvalid, wire.ReasonInvalid},
}

// RoomError is a host's refusal of a room request, as RoomClient returns
// it. It matches, with errors.Is and errors.As, the error the host's
// rules returned: room.ErrNotMember, room.ErrNotMaster, an
// *room.EpochError (stale epoch or commit conflict, with the room's
// epoch), a *store.HistoryTrimmedError (with the oldest kept message),
// and so on (docs/PROTOCOL.md §18.4). A reason this version does not know
// matches nothing but itself.
type RoomError struct {
	Code   wire.ErrorCode
	Reason wire.RoomReason
	// Value is the number the reason carries: the room's epoch for
	// stale-epoch and commit-conflict, the oldest kept sequence number
	// for history-trimmed; 0 otherwise.
	Value uint64

	cause error // what Unwrap returns
}

func (e *RoomError) Error() string {
	msg := fmt.Sprintf("node: the host refused: %s (%v", e.Reason.Text(), e.Reason)
	switch e.Reason {
	case wire.ReasonStaleEpoch, wire.ReasonCommitConflict:
		msg += fmt.Sprintf(", room at epoch %d", e.Value)
	case wire.ReasonHistoryTrimmed:
		msg += fmt.Sprintf(", oldest kept message %d", e.Value)
	}
	return msg + ")"
}

// Unwrap returns the error of room or store that the reason stands for.
func (e *RoomError) Unwrap() error { return e.cause }

// roomErrorFromWire turns a RoomError frame into the client's error.
func roomErrorFromWire(m *wire.RoomError) *RoomError {
	e := &RoomError{Code: m.Code, Reason: m.Reason, Value: m.Value}
	switch m.Reason {
	case wire.ReasonStaleEpoch:
		e.cause = &room.EpochError{Err: room.ErrOldEpoch, Current: m.Value}
	case wire.ReasonCommitConflict:
		e.cause = &room.EpochError{Err: room.ErrCommitConflict, Current: m.Value}
	case wire.ReasonHistoryTrimmed:
		e.cause = &store.HistoryTrimmedError{After: max(m.Value, 1) - 1, Oldest: m.Value}
	default:
		for _, re := range reasonErrors {
			if re.reason == m.Reason {
				e.cause = re.err
				break
			}
		}
	}
	return e
}
