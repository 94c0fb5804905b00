package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/room"
	"github.com/lanpeer/lanpeer/store"
	"github.com/lanpeer/lanpeer/wire"
)

// RoomClient runs room operations on a host over a dialed session: one
// request stream per call (docs/PROTOCOL.md §18). It moves signed blobs
// and never verifies them: the caller's room.MemberState does, and never
// believes the host alone. A refusal is a *RoomError matching the host's
// typed error (errors.Is(err, room.ErrNotMember), ...); a stream-level
// refusal is a *StreamError. A RoomClient is safe for concurrent use; each
// call takes one of the streams the host allows per session (Ready's ms).
//
// Pushes come on notify streams the host opens: serve them with a Pushes
// in the dialing Config's Handlers:
//
//	pushes := node.NewPushes(0)
//	c, err := node.Dial(ctx, target, &node.Config{Identity: id,
//		Handlers: map[node.StreamKind]node.Handler{node.KindNotify: pushes}})
//	rc := node.NewRoomClient(c)
//	rc.PublishKeyPackage(ctx, secrets.KeyPackage().Blob()) // on every session
//	for p := range pushes.C() { ... }
type RoomClient struct {
	c *Conn
}

// NewRoomClient returns a RoomClient over c.
func NewRoomClient(c *Conn) *RoomClient { return &RoomClient{c: c} }

// Conn returns the session.
func (rc *RoomClient) Conn() *Conn { return rc.c }

// errUnexpectedReply is a reply of another type than the request's.
var errUnexpectedReply = errors.New("node: the host answered with an unexpected message")

// do sends req on a new request stream and returns the reply, or the
// host's refusal. ctx bounds the whole exchange.
func (rc *RoomClient) do(ctx context.Context, req wire.Message) (wire.Message, error) {
	b, err := wire.Encode(req)
	if err != nil {
		return nil, err
	}
	s, err := rc.c.OpenStream(ctx, KindRequest)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = s.SetDeadline(time.Now()) })
	defer stop()
	if err := s.WriteFrame(b); err != nil {
		return nil, ctxErr(ctx, fmt.Errorf("node: sending %v: %w", req.Type(), err))
	}
	p, err := s.ReadFrame()
	if err != nil {
		return nil, ctxErr(ctx, err)
	}
	m, err := wire.Decode(p)
	if err != nil {
		return nil, fmt.Errorf("node: reply to %v: %w", req.Type(), err)
	}
	if re, ok := m.(*wire.RoomError); ok {
		return nil, roomErrorFromWire(re)
	}
	return m, nil
}

// ctxErr prefers ctx's error when ctx ended the exchange.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}

// call runs req and checks the reply's type.
func call[R wire.Message](ctx context.Context, rc *RoomClient, req wire.Message) (R, error) {
	var zero R
	m, err := rc.do(ctx, req)
	if err != nil {
		return zero, err
	}
	r, ok := m.(R)
	if !ok {
		return zero, fmt.Errorf("%w: %v to %v", errUnexpectedReply, m.Type(), req.Type())
	}
	return r, nil
}

// PublishKeyPackage publishes the caller's key package blob (every
// session should: an invitee's key package must be on the host).
func (rc *RoomClient) PublishKeyPackage(ctx context.Context, blob []byte) error {
	_, err := call[*wire.Ack](ctx, rc, &wire.PublishKeyPackage{KeyPackage: blob})
	return err
}

// CreateRoom uploads a create commit; the caller becomes the room's
// master. The wrapped keys follow with UploadWrappedKey (CreateProposal
// does both).
func (rc *RoomClient) CreateRoom(ctx context.Context, commit []byte) error {
	_, err := call[*wire.Ack](ctx, rc, &wire.CreateRoom{Commit: commit})
	return err
}

// Commit uploads the master's next commit (invite, remove or rotate).
func (rc *RoomClient) Commit(ctx context.Context, id store.RoomID, commit []byte) error {
	_, err := call[*wire.Ack](ctx, rc, &wire.CommitRoom{Room: id[:], Commit: commit})
	return err
}

// UploadWrappedKey uploads one wrapped key (master only).
func (rc *RoomClient) UploadWrappedKey(ctx context.Context, id store.RoomID, blob []byte) error {
	_, err := call[*wire.Ack](ctx, rc, &wire.UploadWrappedKey{Room: id[:], Wrapped: blob})
	return err
}

// propose uploads a proposal's commit, then its wrapped keys one per
// request, after checking it is of the operation the caller meant.
func (rc *RoomClient) propose(ctx context.Context, p *room.Proposal, op room.Operation) error {
	if p == nil || p.Info == nil {
		return errors.New("node: no proposal")
	}
	if p.Info.Operation != op {
		return fmt.Errorf("node: a %v proposal given to %v", p.Info.Operation, op)
	}
	id := store.RoomID(p.Info.Room)
	var err error
	if op == room.OpCreate {
		err = rc.CreateRoom(ctx, p.Commit)
	} else {
		err = rc.Commit(ctx, id, p.Commit)
	}
	if err != nil {
		return err
	}
	for _, w := range p.Wrapped {
		if err := rc.UploadWrappedKey(ctx, id, w.Blob); err != nil {
			return fmt.Errorf("node: wrapped key for %s: %w", w.Member.Short(), err)
		}
	}
	return nil
}

// CreateProposal creates the room of a room.NewRoom proposal: its create
// commit and its wrapped keys. The master applies the proposal to its own
// state once this returns nil.
func (rc *RoomClient) CreateProposal(ctx context.Context, p *room.Proposal) error {
	return rc.propose(ctx, p, room.OpCreate)
}

// Invite uploads an invite proposal (room.MemberState.Invite): its commit,
// then every wrapped key. An invitee without a key package on the host is
// refused with room.ErrMissingKeyPackage: it must dial the host once.
func (rc *RoomClient) Invite(ctx context.Context, p *room.Proposal) error {
	return rc.propose(ctx, p, room.OpInvite)
}

// Remove uploads a remove proposal (room.MemberState.Remove).
func (rc *RoomClient) Remove(ctx context.Context, p *room.Proposal) error {
	return rc.propose(ctx, p, room.OpRemove)
}

// Rotate uploads a rotate proposal (room.MemberState.Rotate).
func (rc *RoomClient) Rotate(ctx context.Context, p *room.Proposal) error {
	return rc.propose(ctx, p, room.OpRotate)
}

// RoomEntry is one room of ListRooms, as the host reports it (its name
// unchecked: check it with room.CheckName before showing it).
type RoomEntry struct {
	Room store.Room
	Role store.Role
	Left bool
}

// ListRooms lists the caller's rooms after after (the zero id: from the
// first), at most limit (1 to wire.MaxListLimit).
func (rc *RoomClient) ListRooms(ctx context.Context, after store.RoomID, limit int) ([]RoomEntry, error) {
	req := &wire.ListRooms{Limit: uint16(min(max(limit, 0), 0xffff))}
	if !after.IsZero() {
		req.After = after[:]
	}
	r, err := call[*wire.RoomList](ctx, rc, req)
	if err != nil {
		return nil, err
	}
	out := make([]RoomEntry, len(r.Rooms))
	for i, e := range r.Rooms {
		out[i] = RoomEntry{
			Room: store.Room{
				ID: store.RoomID(e.Room), Master: cryptosuite.PeerID(e.Master), Suite: e.Suite, Name: string(e.Name),
				Epoch: e.Epoch, Head: [32]byte(e.Head), Created: time.UnixMilli(e.Created).UTC(),
			},
			Role: store.Role(e.Role), Left: e.Left,
		}
	}
	return out, nil
}

// maxInfoPages bounds RoomInfo's pages: the store's largest room.
const maxInfoPages = store.MaxMembers/wire.MaxInfoMembers + 1

// RoomInfo returns a room's state and all its members, fetched a page at
// a time, and the master's identity key, checked against the master's
// peer ID (VerifyMasterKey: a host that lies about it is refused with an
// error matching ErrWrongMasterKey), so the room's commits verify without
// fetching the master's key package.
func (rc *RoomClient) RoomInfo(ctx context.Context, id store.RoomID) (*RoomInfo, error) {
	var out *RoomInfo
	var after []byte
	for range maxInfoPages {
		r, err := call[*wire.RoomInfoReply](ctx, rc, &wire.RoomInfo{Room: id[:], After: after, Limit: wire.MaxInfoMembers})
		if err != nil {
			return nil, err
		}
		if out == nil {
			mk, err := VerifyMasterKey(cryptosuite.PeerID(r.Master), r.MasterKey)
			if err != nil {
				return nil, fmt.Errorf("room %s: %w", id, err)
			}
			out = &RoomInfo{
				MasterKey: mk,
				Room: store.Room{
					ID: store.RoomID(r.Room), Master: cryptosuite.PeerID(r.Master), Suite: r.Suite, Name: string(r.Name),
					Epoch: r.Epoch, Head: [32]byte(r.Head), Created: time.UnixMilli(r.Created).UTC(),
				},
				Span: store.Span{First: r.First, Last: r.Last},
			}
		}
		for _, m := range r.Members {
			out.Members = append(out.Members, MemberInfo{
				Peer: cryptosuite.PeerID(m.Peer), Role: store.Role(m.Role), KeyPackage: [32]byte(m.KeyPackage),
				AckedEpoch: m.Acked, Left: m.Left,
			})
		}
		if !r.More || len(r.Members) == 0 {
			return out, nil
		}
		after = r.Members[len(r.Members)-1].Peer
	}
	return nil, fmt.Errorf("node: room %s has more than %d pages of members", id, maxInfoPages)
}

// Leave hands the host the caller's signed leave request
// (room.MemberState.Leave); the host applies it at once.
func (rc *RoomClient) Leave(ctx context.Context, id store.RoomID, blob []byte) error {
	_, err := call[*wire.Ack](ctx, rc, &wire.LeaveRoom{Room: id[:], Leave: blob})
	return err
}

// Delete deletes the caller's room (master only).
func (rc *RoomClient) Delete(ctx context.Context, id store.RoomID) error {
	_, err := call[*wire.Ack](ctx, rc, &wire.DeleteRoom{Room: id[:]})
	return err
}

// Send posts a signed message (room.MemberState.SealMessage) and returns
// its sequence number. A retry with the same message id, even re-sealed
// under a newer epoch, returns the first send's number. Under an older
// epoch than the room's it fails with a *room.EpochError (room.ErrOldEpoch):
// fetch the commits and the new key, seal again with the same id, send.
func (rc *RoomClient) Send(ctx context.Context, id store.RoomID, blob []byte) (uint64, error) {
	r, err := call[*wire.MessageStored](ctx, rc, &wire.SendMessage{Room: id[:], Message: blob})
	if err != nil {
		return 0, err
	}
	return r.Seq, nil
}

// Read returns the messages after the cursor, at most limit (1 to
// wire.MaxListLimit), consecutive from it; fewer when the room has no
// more or the rest did not fit one reply: read on after the last. A
// cursor before the kept history is a *store.HistoryTrimmedError naming
// the oldest kept message.
func (rc *RoomClient) Read(ctx context.Context, id store.RoomID, after uint64, limit int) ([]StoredMessage, error) {
	r, err := call[*wire.MessageList](ctx, rc, &wire.ReadMessages{Room: id[:], After: after, Limit: uint16(min(max(limit, 0), 0xffff))})
	if err != nil {
		var re *RoomError
		if errors.As(err, &re) && re.Reason == wire.ReasonHistoryTrimmed {
			re.cause = &store.HistoryTrimmedError{Room: id, After: after, Oldest: re.Value}
		}
		return nil, err
	}
	out := make([]StoredMessage, len(r.Messages))
	for i, m := range r.Messages {
		if want := after + uint64(i) + 1; m.Seq != want {
			return nil, fmt.Errorf("node: the host served message %d where %d follows the cursor", m.Seq, want)
		}
		out[i] = StoredMessage{Seq: m.Seq, Stored: time.UnixMilli(m.Stored).UTC(), Blob: m.Blob}
	}
	return out, nil
}

// FetchWrappedKey returns the caller's wrapped key of epoch, to open with
// room.MemberState.OpenWrappedKey.
func (rc *RoomClient) FetchWrappedKey(ctx context.Context, id store.RoomID, epoch uint64) ([]byte, error) {
	r, err := call[*wire.WrappedKeyReply](ctx, rc, &wire.FetchWrappedKey{Room: id[:], Epoch: epoch})
	if err != nil {
		return nil, err
	}
	return r.Wrapped, nil
}

// Ack tells the host the caller holds the room key of epoch.
func (rc *RoomClient) Ack(ctx context.Context, id store.RoomID, epoch uint64) error {
	_, err := call[*wire.Ack](ctx, rc, &wire.AckEpoch{Room: id[:], Epoch: epoch})
	return err
}

// FetchCommits returns commits after the epoch, in epoch order (at most
// limit, fewer when the rest did not fit one reply), and the room's
// current epoch, for room.MemberState.ApplyCommit.
// The master's identity key the reply carries is checked by CatchUp
// against the member's state; RoomInfo returns it checked against the
// master's peer ID.
func (rc *RoomClient) FetchCommits(ctx context.Context, id store.RoomID, after uint64, limit int) ([][]byte, uint64, error) {
	r, err := rc.fetchCommits(ctx, id, after, limit)
	if err != nil {
		return nil, 0, err
	}
	return r.Commits, r.Epoch, nil
}

func (rc *RoomClient) fetchCommits(ctx context.Context, id store.RoomID, after uint64, limit int) (*wire.CommitList, error) {
	return call[*wire.CommitList](ctx, rc, &wire.FetchCommits{Room: id[:], After: after, Limit: uint16(min(max(limit, 0), 0xffff))})
}

// maxCatchUpPages bounds CatchUp's fetches: each page holds up to
// wire.MaxListLimit commits.
const maxCatchUpPages = 1024

// CatchUp brings st up to date with the host: it fetches the commits after
// st's verified head, page by page, and applies each (st verifies them:
// room's typed errors for a forged, dropped, rolled-back or forked
// commit). It also checks the host's own report of the room's epoch
// against the commits it served, so a host that hides the latest commit is
// caught when it serves the commits, not only when a message of the hidden
// epoch arrives: a reported epoch past the last commit served, with no
// more to fetch, matches room.ErrCommitGap; a reported epoch below st's
// verified head matches room.ErrRollback; a reply whose master key is not
// the one st holds matches ErrWrongMasterKey. It returns the number of commits
// applied, those before an error included (each of them verified).
func (rc *RoomClient) CatchUp(ctx context.Context, st *room.MemberState) (int, error) {
	id := store.RoomID(st.Room())
	applied := 0
	for range maxCatchUpPages {
		head, _ := st.Head()
		cl, err := rc.fetchCommits(ctx, id, head, wire.MaxListLimit)
		if err != nil {
			return applied, err
		}
		commits, reported := cl.Commits, cl.Epoch
		if mk := st.MasterKey(); !bytes.Equal(cl.MasterKey, mk.SPKI()) {
			// A room's master never changes: the key it carries is the one
			// st verified its commits under.
			return applied, fmt.Errorf("%w: room %s's commits come with a key that is not master %s's",
				ErrWrongMasterKey, id, mk.PeerID().Short())
		}
		if reported < head {
			return applied, fmt.Errorf("%w: the host reports epoch %d for room %s, and this member verified epoch %d",
				room.ErrRollback, reported, id, head)
		}
		for _, b := range commits {
			if err := st.ApplyCommit(b); err != nil {
				return applied, err
			}
			applied++
		}
		now, _ := st.Head()
		if now >= reported {
			return applied, nil
		}
		if len(commits) == 0 {
			return applied, fmt.Errorf("%w: the host reports epoch %d for room %s and serves no commit after epoch %d",
				room.ErrCommitGap, reported, id, now)
		}
	}
	return applied, fmt.Errorf("node: room %s has more than %d pages of commits", id, maxCatchUpPages)
}

// FetchKeyPackage returns the key package with hash (a message's signer's,
// room.MessageSigner), to verify with room.VerifyStoredKeyPackage.
func (rc *RoomClient) FetchKeyPackage(ctx context.Context, hash [32]byte) ([]byte, error) {
	r, err := call[*wire.KeyPackageReply](ctx, rc, &wire.FetchKeyPackage{Hash: hash[:]})
	if err != nil {
		return nil, err
	}
	return r.KeyPackage, nil
}

// LatestKeyPackage returns peer's latest unexpired key package, to invite
// it or wrap to it (verify it with room.VerifyKeyPackage). A peer without
// one is refused with room.ErrMissingKeyPackage: it must dial the host
// once.
func (rc *RoomClient) LatestKeyPackage(ctx context.Context, peer cryptosuite.PeerID) ([]byte, error) {
	r, err := call[*wire.KeyPackageReply](ctx, rc, &wire.FetchKeyPackage{Peer: peer[:]})
	if err != nil {
		return nil, err
	}
	return r.KeyPackage, nil
}

// FetchLeave returns a member's signed leave request (master only), to
// verify with room.VerifyLeaveRequest and turn into a remove.
func (rc *RoomClient) FetchLeave(ctx context.Context, id store.RoomID, peer cryptosuite.PeerID) ([]byte, error) {
	r, err := call[*wire.LeaveReply](ctx, rc, &wire.FetchLeave{Room: id[:], Peer: peer[:]})
	if err != nil {
		return nil, err
	}
	return r.Leave, nil
}

// DefaultPushBuffer is a Pushes channel's capacity when NewPushes is given
// 0.
const DefaultPushBuffer = 256

// Pushes is the requestor's Handler for the notify streams a host opens:
// it decodes each push onto a channel. While the channel is full it stops
// reading, and the host, once its own queue for this session is full,
// drops pushes and says so with a PushLost: the member then catches up by
// cursor.
type Pushes struct {
	ch chan Push
}

// NewPushes returns a Pushes whose channel holds buffer pushes (0:
// DefaultPushBuffer).
func NewPushes(buffer int) *Pushes {
	if buffer <= 0 {
		buffer = DefaultPushBuffer
	}
	return &Pushes{ch: make(chan Push, buffer)}
}

// C returns the channel of pushes. It is never closed: watch the
// session's Done too.
func (p *Pushes) C() <-chan Push { return p.ch }

// ServeStream reads pushes from one notify stream until it ends. A frame
// that is not a push ends the stream with an Error protocol.
func (p *Pushes) ServeStream(ctx context.Context, s *Stream) {
	for {
		frame, err := s.ReadFrame()
		if err != nil {
			return
		}
		m, err := wire.Decode(frame)
		if err != nil {
			s.Fail(wire.CodeProtocol)
			return
		}
		push, ok := pushFromWire(m)
		if !ok {
			s.Fail(wire.CodeProtocol)
			return
		}
		select {
		case p.ch <- push:
		case <-ctx.Done():
			return
		}
	}
}

func pushFromWire(m wire.Message) (Push, bool) {
	switch v := m.(type) {
	case *wire.MessagePush:
		return Push{Kind: PushMessage, Room: store.RoomID(v.Room),
			Message: StoredMessage{Seq: v.Seq, Stored: time.UnixMilli(v.Stored).UTC(), Blob: v.Blob}}, true
	case *wire.KeySyncPush:
		return Push{Kind: PushKeySync, Room: store.RoomID(v.Room), Epoch: v.Epoch}, true
	case *wire.MembershipPush:
		p := Push{Kind: PushMembership, Room: store.RoomID(v.Room), Epoch: v.Epoch, Event: MembershipEvent(v.Event)}
		copy(p.Peer[:], v.Peer)
		return p, true
	case *wire.PushesLost:
		return Push{Kind: PushLost, Lost: v.Count}, true
	}
	return Push{}, false
}
