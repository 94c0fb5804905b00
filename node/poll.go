package node

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/store"
)

// Polling the store for what other processes stored (DESIGN.md §9).
//
// Several lanpeer processes may share one identity and one database and
// serve the same rooms. Each pushes what its own Service stores at once;
// what another process stores, it learns by polling, because FerretDB has
// no change streams. With ServiceConfig.PollInterval above zero, one
// goroutine polls, every interval, each room that a member subscribed to
// this Service is in:
//
//   - Messages: every message after the room's cursor (the last sequence
//     number pushed here) is pushed, in order, except those this Service's
//     own Send pushed already. Each message is pushed once per
//     subscription, whichever process stored it.
//   - Commits: when the room's epoch moved past the one last seen, and not
//     only by this Service's own commits, the members before and after get
//     one membership push for the new epoch. Its event is read from the
//     member lists: remove if a member went, else invite if one came, else
//     rotate (several commits between two polls give one push, for the
//     latest epoch; members catch up by commits as after any push).
//   - Wrapped keys: after a new epoch, and for a room first seen whose
//     head a subscribed member has not acknowledged, the member's wrapped
//     key is looked for on each poll, for up to pollKeyWait; once stored
//     (by any process) the member gets a key-sync push, unless this
//     Service's own UploadWrappedKey pushed it.
//   - Deletion: a room that is no longer found gets a delete push to the
//     members last seen.
//
// What does not propagate: a leave request made through another process
// (its members learn of it from the master's remove commit, one epoch
// later), and anything in a room before this Service first polled it (a
// member catches up by cursor, as after a reconnect). The rooms polled are
// found by listing the rooms of each subscribed peer, at once for a new
// subscription and every pollRefreshEvery polls, at most maxPolledRooms.
//
// Exactly once: the poller and the Service's own pushes decide under one
// lock. A room's first poll reads its state and takes it as the base: the
// poller never pushes a message or epoch up to the base, so the Service's
// own pushes of those stand; past the base, whichever of the two comes
// first pushes and the other does not.

// Poll bounds and defaults.
const (
	// DefaultPollInterval is lanpeer listen's poll interval on a MongoDB
	// store: a push of what another process stored arrives within about
	// this long.
	DefaultPollInterval = 250 * time.Millisecond
	// MinPollInterval and MaxPollInterval bound ServiceConfig.PollInterval
	// (0 turns polling off).
	MinPollInterval = 10 * time.Millisecond
	MaxPollInterval = time.Minute

	pollRefreshEvery = 8                // polls between listings of the subscribed peers' rooms
	maxPolledRooms   = maxCachedRooms   // rooms polled at most
	maxPollPages     = 8                // pages of messages read per room per poll
	pollTimeout      = 30 * time.Second // one poll's store calls
	pollKeyWait      = 2 * time.Minute  // how long a member's wrapped key is looked for
	maxPollKeys      = 4096             // wrapped keys looked for at once
	keysPerPoll      = 256              // wrapped keys looked up per poll
	maxOwnPerRoom    = 1 << 16          // own pushes remembered past a room's cursor
	claimKeep        = 10 * time.Minute // how long a key-sync push is remembered
	maxClaims        = 1 << 16          // key-sync pushes remembered
)

// keyRef names one member's wrapped key of one epoch.
type keyRef struct {
	room  store.RoomID
	epoch uint64
	peer  cryptosuite.PeerID
}

// polledRoom is what the poller knows of one room.
type polledRoom struct {
	ready    bool // the first poll read the room's state
	deleted  bool // a delete push went out
	unlisted bool // no subscribed peer's room list holds it: polled once more, then dropped

	base   uint64              // messages up to base predate polling: never pushed by the poller
	cursor uint64              // every message up to cursor is pushed here
	own    map[uint64]struct{} // messages after cursor that Send pushed

	epochBase uint64              // likewise for epochs
	epoch     uint64              // the latest epoch pushed here
	ownEpochs map[uint64]struct{} // epochs after epoch that Commit pushed

	members []cryptosuite.PeerID // the member list at epoch
}

// poller polls the store for a Service (see above).
type poller struct {
	s        *Service
	interval time.Duration
	wake     chan struct{} // a new subscription: list rooms soon

	mu      sync.Mutex
	rooms   map[store.RoomID]*polledRoom
	keys    map[keyRef]time.Time // wrapped keys looked for, until then
	claimed map[keyRef]time.Time // key-sync pushes made, and when
	failing bool                 // the last poll failed
	full    bool                 // maxPolledRooms was reached (logged once)
}

func newPoller(s *Service, interval time.Duration) *poller {
	return &poller{
		s: s, interval: interval, wake: make(chan struct{}, 1),
		rooms: map[store.RoomID]*polledRoom{}, keys: map[keyRef]time.Time{}, claimed: map[keyRef]time.Time{},
	}
}

// nudge asks for the room list to be read again soon (a new subscriber).
func (p *poller) nudge() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// claimMessage reports whether the Service's Send should push message seq
// of room id, and records that it does.
func (p *poller) claimMessage(id store.RoomID, seq uint64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.rooms[id]
	switch {
	case r == nil:
		return true
	case r.ready && seq <= r.base:
		return true
	case r.ready && seq <= r.cursor:
		return false // the poller pushed it
	case len(r.own) < maxOwnPerRoom:
		r.own[seq] = struct{}{}
	}
	return true
}

// claimEpoch is claimMessage for the membership push of a commit.
func (p *poller) claimEpoch(id store.RoomID, epoch uint64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.rooms[id]
	switch {
	case r == nil:
		return true
	case r.ready && epoch <= r.epochBase:
		return true
	case r.ready && epoch <= r.epoch:
		return false
	case len(r.ownEpochs) < maxOwnPerRoom:
		r.ownEpochs[epoch] = struct{}{}
	}
	return true
}

// claimKey is claimMessage for a key-sync push.
func (p *poller) claimKey(ref keyRef) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.keys, ref)
	if _, done := p.claimed[ref]; done {
		return false
	}
	if len(p.claimed) < maxClaims {
		p.claimed[ref] = time.Now()
	}
	return true
}

// claimDelete is claimMessage for a room's delete push.
func (p *poller) claimDelete(id store.RoomID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.rooms[id]
	if r == nil {
		return true
	}
	if r.deleted {
		return false
	}
	r.deleted = true
	return true
}

// run polls until the Service closes.
func (p *poller) run() {
	defer p.s.wg.Done()
	t := time.NewTicker(p.interval)
	defer t.Stop()
	refresh := true
	for n := 0; ; n++ {
		select {
		case <-p.s.ctx.Done():
			return
		case <-p.wake:
			refresh = true
		case <-t.C:
		}
		if n%pollRefreshEvery == 0 {
			refresh = true
		}
		ctx, cancel := context.WithTimeout(p.s.ctx, pollTimeout)
		err := p.poll(ctx, refresh)
		cancel()
		if p.s.ctx.Err() != nil {
			return
		}
		if err == nil {
			refresh = false
		}
		p.report(err)
	}
}

// report logs a failing store once, and its recovery.
func (p *poller) report(err error) {
	p.mu.Lock()
	was := p.failing
	p.failing = err != nil
	p.mu.Unlock()
	switch {
	case err != nil && !was:
		p.s.log.Warn("polling the store failed; what other processes store is pushed once it answers again", "err", err)
	case err != nil:
		p.s.log.Debug("polling the store failed", "err", err)
	case was:
		p.s.log.Info("polling the store works again")
	}
}

// poll is one round: the room list if refresh, then each room, then the
// wrapped keys looked for. It stops at the first store failure.
func (p *poller) poll(ctx context.Context, refresh bool) error {
	if refresh {
		if err := p.listRooms(ctx); err != nil {
			return err
		}
	}
	p.mu.Lock()
	ids := make([]store.RoomID, 0, len(p.rooms))
	for id, r := range p.rooms {
		if !r.deleted {
			ids = append(ids, id)
		}
	}
	now := time.Now()
	for ref, at := range p.claimed {
		if now.Sub(at) > claimKeep {
			delete(p.claimed, ref)
		}
	}
	p.mu.Unlock()
	for _, id := range ids {
		if err := p.pollRoom(ctx, id); err != nil {
			return err
		}
	}
	return p.pollKeys(ctx)
}

// listRooms makes the polled rooms those of the subscribed peers.
func (p *poller) listRooms(ctx context.Context) error {
	p.s.mu.Lock()
	peers := make([]cryptosuite.PeerID, 0, len(p.s.subs))
	for peer := range p.s.subs {
		peers = append(peers, peer)
	}
	p.s.mu.Unlock()
	st := p.s.host.Store()
	want := map[store.RoomID]struct{}{}
	full := false
list:
	for _, peer := range peers {
		var after store.RoomID
		for range maxPolledRooms/store.MaxListLimit + 1 {
			rooms, err := st.ListRooms(ctx, peer, after, store.MaxListLimit)
			if err != nil {
				return err
			}
			for _, r := range rooms {
				if len(want) >= maxPolledRooms {
					full = true
					break list
				}
				want[r.ID] = struct{}{}
			}
			if len(rooms) < store.MaxListLimit {
				break
			}
			after = rooms[len(rooms)-1].ID
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, r := range p.rooms {
		_, listed := want[id]
		switch {
		case r.deleted || !listed && !r.ready:
			delete(p.rooms, id)
		case !listed:
			// Deleted, or its subscribed members removed: one more poll
			// pushes the deletion or the removal, then it goes.
			r.unlisted = true
		default:
			r.unlisted = false
		}
	}
	for id := range want {
		if p.rooms[id] == nil {
			p.rooms[id] = &polledRoom{own: map[uint64]struct{}{}, ownEpochs: map[uint64]struct{}{}}
		}
	}
	if full && !p.full {
		p.s.log.Warn("polling the store: the subscribed peers are in more rooms than are polled; the others get no pushes of what other processes store",
			"max", maxPolledRooms)
	}
	p.full = full
	return nil
}

// pollRoom polls one room: first its state, after that its epoch and
// messages.
func (p *poller) pollRoom(ctx context.Context, id store.RoomID) error {
	st := p.s.host.Store()
	p.mu.Lock()
	r := p.rooms[id]
	p.mu.Unlock()
	if r == nil {
		return nil
	}
	rm, err := st.GetRoom(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		p.gone(id, r)
		return nil
	}
	if err != nil {
		return err
	}
	span, err := st.MessageSpan(ctx, id)
	if err != nil {
		return ignoreGone(err)
	}
	p.mu.Lock()
	ready, epoch := r.ready, r.epoch
	p.mu.Unlock()
	if !ready || rm.Epoch > epoch {
		ms, err := st.Members(ctx, id)
		if err != nil {
			return ignoreGone(err)
		}
		if !ready {
			p.start(id, r, rm, span, ms)
			return nil
		}
		p.advance(id, r, rm.Epoch, ms)
	}
	if err := p.pollMessages(ctx, id, r, span.Last); err != nil {
		return err
	}
	p.mu.Lock()
	if r.unlisted && p.rooms[id] == r {
		delete(p.rooms, id)
	}
	p.mu.Unlock()
	return nil
}

// ignoreGone passes on every error but a room deleted since it was read
// (the next poll finds it gone).
func ignoreGone(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

func peersOf(ms []store.Member) []cryptosuite.PeerID {
	out := make([]cryptosuite.PeerID, len(ms))
	for i, m := range ms {
		out[i] = m.Peer
	}
	return out
}

// start takes a room's state at its first poll as the base, and looks for
// the wrapped keys of its head that subscribed members have not
// acknowledged (an invite made through another process).
func (p *poller) start(id store.RoomID, r *polledRoom, rm store.Room, span store.Span, ms []store.Member) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r.ready = true
	r.base, r.cursor = span.Last, span.Last
	r.epochBase, r.epoch = rm.Epoch, rm.Epoch
	for seq := range r.own {
		if seq <= r.cursor {
			delete(r.own, seq)
		}
	}
	for e := range r.ownEpochs {
		if e <= r.epoch {
			delete(r.ownEpochs, e)
		}
	}
	r.members = peersOf(ms)
	for _, m := range ms {
		if m.AckedEpoch < rm.Epoch && m.Leave == nil {
			p.lookForKey(keyRef{id, rm.Epoch, m.Peer})
		}
	}
}

// lookForKey adds ref to the wrapped keys looked for if its peer is
// subscribed here. Call with p.mu held.
func (p *poller) lookForKey(ref keyRef) {
	if _, done := p.claimed[ref]; done || len(p.keys) >= maxPollKeys {
		return
	}
	p.s.mu.Lock()
	_, subscribed := p.s.subs[ref.peer]
	p.s.mu.Unlock()
	if subscribed {
		p.keys[ref] = time.Now().Add(pollKeyWait)
	}
}

// advance handles a room whose epoch moved past the one last pushed.
func (p *poller) advance(id store.RoomID, r *polledRoom, epoch uint64, ms []store.Member) {
	now := peersOf(ms)
	p.mu.Lock()
	from, before := r.epoch, r.members
	own := 0
	for e := range r.ownEpochs {
		if e <= epoch {
			own++
			delete(r.ownEpochs, e)
		}
	}
	r.epoch, r.members = epoch, now
	for _, m := range ms {
		if m.Leave == nil {
			p.lookForKey(keyRef{id, epoch, m.Peer})
		}
	}
	p.mu.Unlock()
	p.s.forget(id)
	if uint64(own) >= epoch-from {
		return // every commit since was this Service's, and pushed
	}
	ev := EventRotate
	targets := append([]cryptosuite.PeerID(nil), now...)
	added := false
	for _, q := range before {
		if !containsPeer(now, q) {
			ev = EventRemove
			targets = append(targets, q)
		}
	}
	for _, q := range now {
		if !containsPeer(before, q) {
			added = true
		}
	}
	if added && ev != EventRemove {
		ev = EventInvite
	}
	p.s.publish(Push{Kind: PushMembership, Room: id, Epoch: epoch, Event: ev}, targets)
}

// gone pushes a room's deletion to its members last seen, unless this
// Service's Delete did.
func (p *poller) gone(id store.RoomID, r *polledRoom) {
	p.mu.Lock()
	push := r.ready && !r.deleted
	r.deleted = true
	members := r.members
	p.mu.Unlock()
	p.s.forget(id)
	if push {
		p.s.publish(Push{Kind: PushMembership, Room: id, Event: EventDelete}, members)
	}
}

// pollMessages pushes the room's messages after its cursor up to last,
// but those Send pushed. When Send pushed all of them, nothing is read.
func (p *poller) pollMessages(ctx context.Context, id store.RoomID, r *polledRoom, last uint64) error {
	p.mu.Lock()
	from := r.cursor
	if last > from && uint64(len(r.own)) >= last-from {
		mine := true
		for seq := from + 1; seq <= last; seq++ {
			if _, ok := r.own[seq]; !ok {
				mine = false
				break
			}
		}
		if mine {
			for seq := from + 1; seq <= last; seq++ {
				delete(r.own, seq)
			}
			r.cursor = last
			from = last
		}
	}
	p.mu.Unlock()
	st := p.s.host.Store()
	for range maxPollPages {
		if from >= last {
			return nil
		}
		msgs, err := st.ReadMessages(ctx, id, from, store.MaxListLimit)
		var trimmed *store.HistoryTrimmedError
		if errors.As(err, &trimmed) {
			// A store with bounded history dropped them already: read on
			// from the oldest kept (members catch up by cursor).
			from = trimmed.Oldest - 1
			p.mu.Lock()
			r.cursor = max(r.cursor, from)
			p.mu.Unlock()
			continue
		}
		if err != nil {
			return ignoreGone(err)
		}
		if len(msgs) == 0 {
			return nil
		}
		var push []store.Message
		p.mu.Lock()
		for _, m := range msgs {
			if m.Seq <= r.cursor {
				continue
			}
			if _, ok := r.own[m.Seq]; ok {
				delete(r.own, m.Seq)
			} else {
				push = append(push, m)
			}
			r.cursor = m.Seq
		}
		p.mu.Unlock()
		if len(push) > 0 {
			targets := p.s.targets(ctx, id)
			for _, m := range push {
				p.s.publish(Push{Kind: PushMessage, Room: id, Message: StoredMessage{Seq: m.Seq, Stored: m.Stored, Blob: m.Blob}}, targets)
			}
		}
		from = msgs[len(msgs)-1].Seq
	}
	return nil
}

// pollKeys looks up the wrapped keys looked for and pushes a key sync for
// each one stored.
func (p *poller) pollKeys(ctx context.Context) error {
	now := time.Now()
	p.mu.Lock()
	refs := make([]keyRef, 0, min(len(p.keys), keysPerPoll))
	for ref, until := range p.keys {
		if now.After(until) {
			delete(p.keys, ref)
			continue
		}
		if len(refs) < keysPerPoll {
			refs = append(refs, ref)
		}
	}
	p.mu.Unlock()
	st := p.s.host.Store()
	for _, ref := range refs {
		_, err := st.GetWrappedKey(ctx, ref.room, ref.epoch, ref.peer)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		p.mu.Lock()
		_, wanted := p.keys[ref]
		delete(p.keys, ref)
		_, done := p.claimed[ref]
		push := wanted && !done
		if push && len(p.claimed) < maxClaims {
			p.claimed[ref] = now
		}
		p.mu.Unlock()
		if push {
			p.s.publish(Push{Kind: PushKeySync, Room: ref.room, Epoch: ref.epoch}, []cryptosuite.PeerID{ref.peer})
		}
	}
	return nil
}
