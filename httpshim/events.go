package httpshim

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/node"
	"github.com/lanpeer/lanpeer/store"
	"github.com/lanpeer/lanpeer/wire"
)

// journal follows one peer's pushes (Service.Subscribe) while any session
// of the peer lives and for Config.EventRetention after the last one
// ends: it keeps the last key-sync, membership and lost events with a
// per-peer counter for GET /v1/events, and wakes the long polls and event
// streams waiting for anything new.
//
// The counter starts at the listener's clock in Unix microseconds (or
// above the last id of a journal dropped before, whichever is higher), so
// a journal never gives an id an earlier one gave: an id from before a
// journal began resumes as "lost", never as another event.
type journal struct {
	peer   cryptosuite.PeerID
	sub    *node.Subscription
	max    int
	cancel context.CancelFunc
	done   chan struct{}
	// Guarded by Server.mu: the peer's sessions, and since when it has
	// none.
	refs      int
	idleSince time.Time

	mu      sync.Mutex
	last    uint64        // id of the latest event
	events  []peerEvent   // the latest max events, oldest first
	changed chan struct{} // closed and replaced on every push
}

// peerEvent is one event of GET /v1/events.
type peerEvent struct {
	ID   uint64
	Kind string // key-sync, membership, lost
	Data []byte // JSON
}

// newJournal starts peer's journal with its counter at base: the first
// event's id is base+1.
func (s *Server) newJournal(peer cryptosuite.PeerID, base uint64) (*journal, error) {
	sub, err := s.svc.Subscribe(peer)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	j := &journal{
		peer: peer, sub: sub, max: s.cfg.EventBacklog, cancel: cancel, done: make(chan struct{}),
		last: base, changed: make(chan struct{}),
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(j.done)
		for {
			p, err := sub.Next(ctx)
			if err != nil {
				return
			}
			j.add(p)
		}
	}()
	return j, nil
}

func (j *journal) close() {
	j.cancel()
	j.sub.Close()
	<-j.done
}

// lastID returns the id of the latest event (the base before any).
func (j *journal) lastID() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.last
}

// wait returns a channel closed at the next push.
func (j *journal) wait() <-chan struct{} {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.changed
}

type keySyncJSON struct {
	Room  string `json:"room"`
	Epoch uint64 `json:"epoch"`
}

type membershipJSON struct {
	Room  string `json:"room"`
	Epoch uint64 `json:"epoch"`
	Event string `json:"event"`
	Peer  string `json:"peer"`
}

type lostJSON struct {
	Count uint64 `json:"count"`
}

var eventNames = map[node.MembershipEvent]string{
	node.EventCreate: "create", node.EventInvite: "invite", node.EventRemove: "remove",
	node.EventRotate: "rotate", node.EventLeave: "leave", node.EventDelete: "delete",
}

func (j *journal) add(p node.Push) {
	var kind string
	var v any
	switch p.Kind {
	case node.PushKeySync:
		kind, v = "key-sync", keySyncJSON{Room: p.Room.String(), Epoch: p.Epoch}
	case node.PushMembership:
		m := membershipJSON{Room: p.Room.String(), Epoch: p.Epoch, Event: eventNames[p.Event]}
		if p.Event == node.EventLeave {
			m.Peer = p.Peer.String()
		}
		kind, v = "membership", m
	case node.PushLost:
		kind, v = "lost", lostJSON{Count: p.Lost}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if kind != "" {
		data, _ := json.Marshal(v)
		j.last++
		j.events = append(j.events, peerEvent{ID: j.last, Kind: kind, Data: data})
		if len(j.events) > j.max {
			j.events = append(j.events[:0:0], j.events[len(j.events)-j.max:]...)
		}
	}
	close(j.changed)
	j.changed = make(chan struct{})
}

// since returns the events after id, whether id is still covered (an id
// the journal no longer holds, or never gave, is not), the latest id, and
// a channel closed at the next push.
func (j *journal) since(id uint64) (evs []peerEvent, covered bool, last uint64, changed <-chan struct{}) {
	j.mu.Lock()
	defer j.mu.Unlock()
	oldest := j.last + 1
	if len(j.events) > 0 {
		oldest = j.events[0].ID
	}
	if id > j.last || id+1 < oldest {
		return nil, false, j.last, j.changed
	}
	for _, e := range j.events {
		if e.ID > id {
			evs = append(evs, e)
		}
	}
	return evs, true, j.last, j.changed
}

// readMessages serves GET /v1/rooms/{room}/messages, a long poll when
// wait is set.
func (s *Server) readMessages(q *request) {
	id, ok := q.roomID()
	if !ok {
		return
	}
	qv, ok := q.query("after", "limit", "wait")
	if !ok {
		return
	}
	after, ok1 := q.uintParam(qv, "after", 0, 0, wire.MaxSeq)
	limit, ok2 := q.uintParam(qv, "limit", 100, 1, wire.MaxListLimit)
	wait, ok3 := q.uintParam(qv, "wait", 0, 0, uint64(s.cfg.MaxWait.Milliseconds()))
	if !ok1 || !ok2 || !ok3 {
		return
	}
	deadline := time.Now().Add(time.Duration(wait) * time.Millisecond)
	req := &wire.ReadMessages{Room: id[:], After: after, Limit: uint16(limit)}
	for {
		changed := q.sess.journal.wait() // before the read: a message stored after it wakes us
		reply, err := s.op(q, req)
		if err != nil {
			q.fail(roomError(err))
			return
		}
		ml := reply.(*wire.MessageList)
		if len(ml.Messages) > 0 || wait == 0 || !time.Now().Before(deadline) {
			out := struct {
				Messages []MessageJSON `json:"messages"`
			}{Messages: messagesJSON(ml.Messages)}
			s.met.messagesOut.Add(float64(len(out.Messages)))
			writeJSON(q.w, http.StatusOK, out)
			return
		}
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-changed:
		case <-t.C:
		case <-q.r.Context().Done():
		case <-q.sess.done:
		case <-s.stop:
		}
		t.Stop()
		if q.r.Context().Err() != nil {
			return
		}
		select {
		case <-q.sess.done:
			q.fail(newAPIError(CodeUnknownSession, "the session ended"))
			return
		case <-s.stop:
			q.fail(newAPIError(codeBusy, "the listener is stopping"))
			return
		default:
		}
	}
}

func messagesJSON(ms []wire.StoredMessage) []MessageJSON {
	out := make([]MessageJSON, len(ms))
	for i, m := range ms {
		out[i] = MessageJSON{Seq: m.Seq, Stored: m.Stored, Message: m.Blob}
	}
	return out
}

// sse writes Server-Sent Events with a write deadline per event.
type sse struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	err error
}

const sseWriteTimeout = 10 * time.Second

func (s *Server) startSSE(q *request) *sse {
	h := q.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	rc := http.NewResponseController(q.w)
	_ = rc.SetReadDeadline(time.Time{})
	e := &sse{w: q.w, rc: rc}
	_ = rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
	q.w.WriteHeader(http.StatusOK)
	e.err = rc.Flush()
	return e
}

func (e *sse) event(id, kind string, data []byte) {
	if e.err != nil {
		return
	}
	_ = e.rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
	if id != "" {
		_, e.err = fmt.Fprintf(e.w, "id: %s\n", id)
	}
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, "event: %s\ndata: %s\n\n", kind, data)
	}
}

func (e *sse) comment(text string) {
	if e.err == nil {
		_ = e.rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
		_, e.err = fmt.Fprintf(e.w, ": %s\n\n", text)
	}
}

func (e *sse) flush() error {
	if e.err == nil {
		e.err = e.rc.Flush()
	}
	return e.err
}

// lastEventID reads Last-Event-ID: a decimal, or absent.
func (q *request) lastEventID() (uint64, bool, bool) {
	v := q.r.Header.Get("Last-Event-ID")
	if v == "" {
		return 0, false, true
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n > wire.MaxSeq {
		q.fail(newAPIError(codeProtocol, "Last-Event-ID must be a decimal event id"))
		return 0, false, false
	}
	return n, true, true
}

// streamWait waits for a push, a ping, or the end; false at the end.
func (s *Server) streamWait(q *request, changed <-chan struct{}, ping *time.Ticker, e *sse) bool {
	select {
	case <-changed:
	case <-ping.C:
		e.comment("ping")
	case <-q.r.Context().Done():
		return false
	case <-q.sess.done:
		return false
	case <-s.stop:
		return false
	}
	return e.flush() == nil
}

// roomEvents serves GET /v1/rooms/{room}/events: the room's messages from
// a cursor, then as they arrive; id = sequence number.
func (s *Server) roomEvents(q *request) {
	id, ok := q.roomID()
	if !ok {
		return
	}
	qv, ok := q.query("after")
	if !ok {
		return
	}
	cursor, ok := q.uintParam(qv, "after", 0, 0, wire.MaxSeq)
	if !ok {
		return
	}
	if last, set, ok := q.lastEventID(); !ok {
		return
	} else if set {
		cursor = last
	}
	// The first read answers refusals with a status, before the stream.
	req := &wire.ReadMessages{Room: id[:], After: cursor, Limit: 100}
	changed := q.sess.journal.wait()
	reply, err := s.op(q, req)
	if err != nil {
		q.fail(roomError(err))
		return
	}
	s.met.streams.Inc()
	defer s.met.streams.Dec()
	e := s.startSSE(q)
	ping := time.NewTicker(s.cfg.PingInterval)
	defer ping.Stop()
	for {
		ms := reply.(*wire.MessageList).Messages
		for _, m := range ms {
			data, _ := json.Marshal(MessageJSON{Seq: m.Seq, Stored: m.Stored, Message: m.Blob})
			e.event(strconv.FormatUint(m.Seq, 10), "message", data)
			req.After = m.Seq
		}
		s.met.messagesOut.Add(float64(len(ms)))
		if e.flush() != nil {
			return
		}
		if len(ms) < int(req.Limit) && !s.streamWait(q, changed, ping, e) {
			return
		}
		changed = q.sess.journal.wait()
		if reply, err = s.op(q, req); err != nil {
			if q.r.Context().Err() == nil {
				data, _ := json.Marshal(errorBody{Error: *roomError(err)})
				e.event("", "error", data)
				e.flush()
			}
			return
		}
	}
}

// sessionEvents serves GET /v1/events: the peer's key-sync, membership and
// lost events, id = the peer's event counter.
func (s *Server) sessionEvents(q *request) {
	if _, ok := q.query(); !ok {
		return
	}
	last, set, ok := q.lastEventID()
	if !ok {
		return
	}
	j := q.sess.journal
	if !set {
		_, _, last, _ = j.since(0)
	}
	s.met.streams.Inc()
	defer s.met.streams.Dec()
	e := s.startSSE(q)
	ping := time.NewTicker(s.cfg.PingInterval)
	defer ping.Stop()
	for {
		evs, covered, latest, changed := j.since(last)
		if !covered {
			data, _ := json.Marshal(lostJSON{})
			e.event(strconv.FormatUint(latest, 10), "lost", data)
			last = latest
		}
		for _, ev := range evs {
			e.event(strconv.FormatUint(ev.ID, 10), ev.Kind, ev.Data)
			last = ev.ID
		}
		if e.flush() != nil || !s.streamWait(q, changed, ping, e) {
			return
		}
	}
}

// roomID parses the {room} path value.
func (q *request) roomID() (store.RoomID, bool) {
	b, err := parseHexID("room", q.r.PathValue("room"), wire.RoomIDSize)
	if err != nil {
		q.fail(newAPIError(codeProtocol, "%s", trimPrefix(err.Error())))
		return store.RoomID{}, false
	}
	return store.RoomID(b), true
}

func (q *request) hexPath(name string, n int) ([]byte, bool) {
	b, err := parseHexID(name, q.r.PathValue(name), n)
	if err != nil {
		q.fail(newAPIError(codeProtocol, "%s", trimPrefix(err.Error())))
		return nil, false
	}
	return b, true
}

// query parses the query string, refusing parameters not in names and
// parameters given twice.
func (q *request) query(names ...string) (map[string]string, bool) {
	vals := q.r.URL.Query()
	out := map[string]string{}
	for k, vs := range vals {
		if !contains(names, k) {
			q.fail(newAPIError(codeProtocol, "unknown query parameter %q", truncate(k, 32)))
			return nil, false
		}
		if len(vs) != 1 {
			q.fail(newAPIError(codeProtocol, "query parameter %q given %d times", k, len(vs)))
			return nil, false
		}
		out[k] = vs[0]
	}
	return out, true
}

func (q *request) uintParam(vals map[string]string, name string, def, lo, hi uint64) (uint64, bool) {
	v, ok := vals[name]
	if !ok {
		return def, true
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n < lo || n > hi {
		q.fail(newAPIError(codeProtocol, "query parameter %q must be a decimal from %d to %d", name, lo, hi))
		return 0, false
	}
	return n, true
}

// op validates a room request and runs it with the session's peer.
func (s *Server) op(q *request, m wire.Message) (wire.Message, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := s.opContext(q.r)
	defer cancel()
	return s.svc.Handle(ctx, q.sess.peer, m)
}
