package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/room"
	"github.com/lanpeer/lanpeer/session"
	"github.com/lanpeer/lanpeer/store"
	"github.com/lanpeer/lanpeer/wire"
)

// Defaults of ServiceConfig.
const (
	// DefaultPushQueue is how many pushes wait for one subscriber before
	// the Service drops new ones and marks them lost.
	DefaultPushQueue = 256
	// DefaultPushWriteTimeout bounds one push's write to a session.
	DefaultPushWriteTimeout = 10 * time.Second
	// DefaultRequestTimeout bounds how long a request stream may take to
	// deliver its request, and the write of its reply.
	DefaultRequestTimeout = 10 * time.Second
)

// maxCachedRooms bounds the rooms whose member sets the Service keeps for
// pushes; past it the cache is emptied and refilled from the store.
const maxCachedRooms = 1024

// ServiceConfig configures a Service.
type ServiceConfig struct {
	// Store holds the rooms. Required. The Service does not close it.
	Store store.Store
	// Limits bound the rooms (room.Limits; nil: defaults).
	Limits *room.Limits
	// Now is the host's clock (default time.Now).
	Now func() time.Time
	// SkipMessageSignatures stores messages without the host's check of
	// their signatures (room.HostConfig.SkipMessageSignatures; members
	// check every message anyway). Default false: the host checks.
	SkipMessageSignatures bool
	// Logger receives the Service's logs (default: discard).
	Logger *slog.Logger
	// PushQueue is how many pushes wait for one subscriber (a session)
	// before new ones are dropped and counted lost (default
	// DefaultPushQueue).
	PushQueue int
	// PushWriteTimeout bounds one push's write to a session (default
	// DefaultPushWriteTimeout); a push that takes longer is counted lost.
	PushWriteTimeout time.Duration
	// RequestTimeout bounds how long a request stream may take to deliver
	// its request, and the reply's write (default DefaultRequestTimeout).
	RequestTimeout time.Duration
	// PollInterval, above zero, makes the Service poll the store this
	// often for what other processes sharing it stored, and push that to
	// its own subscribers (node/poll.go; MinPollInterval to
	// MaxPollInterval). Zero, the default, polls nothing: right for a
	// store no other process writes, such as store/memory.
	PollInterval time.Duration
}

// Service is the one place where the room operations happen, whatever
// the front end (DESIGN.md §1): the TCP front end (ServeStream, the
// KindRequest handler) and the HTTP shim call the same methods, each with
// the caller the front end authenticated. It applies room.Host's rules
// over the store and pushes what changed to the members' subscriptions:
// a new message (with the message), a new epoch's wrapped key, a
// membership change.
//
// # Pushes
//
// Each subscriber (a session, registered by OnSession; or a front end's
// own, by Subscribe) has a bounded queue. A push to a full queue is
// dropped and counted, and the subscriber's next read is a PushLost with
// the count, so a slow member never blocks a sender: it catches up by
// cursor (Read after the last sequence number it holds, FetchCommits,
// FetchWrappedKey). Sessions get their pushes on one notify stream each,
// opened when the first push is due; a write that fails or takes longer
// than PushWriteTimeout closes it (the next push opens another) and is
// counted lost.
//
// The member sets pushes go to are cached per room and refreshed on this
// Service's own commits, leaves and deletes. Several Services (in several
// processes) may share one store when each polls it (PollInterval): each
// then also pushes what the others stored, and refreshes its member sets
// on the commits it finds.
//
// A Service is safe for concurrent use. Close stops its push goroutines.
type Service struct {
	host *room.Host
	now  func() time.Time
	log  *slog.Logger

	pushQueue      int
	pushTimeout    time.Duration
	requestTimeout time.Duration

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	subs    map[cryptosuite.PeerID]map[*Subscription]struct{}
	members map[store.RoomID][]cryptosuite.PeerID // push targets: members that have not left
	// masterKeys caches rooms' masters' identity keys by peer ID, at
	// most maxMasterKeys (a peer ID has one key).
	masterKeys map[cryptosuite.PeerID]*cryptosuite.PublicKey

	poll *poller // nil unless ServiceConfig.PollInterval is set
}

// NewService returns a Service over cfg.Store.
func NewService(cfg ServiceConfig) (*Service, error) {
	h, err := room.NewHost(room.HostConfig{Store: cfg.Store, Limits: cfg.Limits, Now: cfg.Now, SkipMessageSignatures: cfg.SkipMessageSignatures})
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	s := &Service{
		host: h, now: cfg.Now, log: cfg.Logger,
		pushQueue: cfg.PushQueue, pushTimeout: cfg.PushWriteTimeout, requestTimeout: cfg.RequestTimeout,
		subs:       map[cryptosuite.PeerID]map[*Subscription]struct{}{},
		members:    map[store.RoomID][]cryptosuite.PeerID{},
		masterKeys: map[cryptosuite.PeerID]*cryptosuite.PublicKey{},
	}
	switch {
	case s.pushQueue < 0 || s.pushTimeout < 0 || s.requestTimeout < 0:
		return nil, configErr("service queue and timeouts must be positive")
	case cfg.PollInterval != 0 && (cfg.PollInterval < MinPollInterval || cfg.PollInterval > MaxPollInterval):
		return nil, configErr("poll interval %v: want 0 (off) or %v to %v", cfg.PollInterval, MinPollInterval, MaxPollInterval)
	case s.pushQueue == 0:
		s.pushQueue = DefaultPushQueue
	}
	if s.pushTimeout == 0 {
		s.pushTimeout = DefaultPushWriteTimeout
	}
	if s.requestTimeout == 0 {
		s.requestTimeout = DefaultRequestTimeout
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = (&Config{}).logger()
	}
	s.log = s.log.With("component", "rooms")
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if cfg.PollInterval > 0 {
		s.poll = newPoller(s, cfg.PollInterval)
		s.wg.Add(1)
		go s.poll.run()
	}
	return s, nil
}

// Host returns the room rules the Service applies.
func (s *Service) Host() *room.Host { return s.host }

// Configure makes cfg serve the room operations with this Service: the
// KindRequest handler, OnSession (chained before any OnSession cfg has)
// to push to each session, and a MaxRequestFrame that fits a commit of
// the rooms' member limit. It changes cfg; call it before Listen.
func (s *Service) Configure(cfg *Config) {
	handlers := make(map[StreamKind]Handler, len(cfg.Handlers)+1)
	for k, h := range cfg.Handlers {
		handlers[k] = h
	}
	handlers[KindRequest] = s
	cfg.Handlers = handlers
	if prev := cfg.OnSession; prev != nil {
		cfg.OnSession = func(c *Conn) { s.OnSession(c); prev(c) }
	} else {
		cfg.OnSession = s.OnSession
	}
	// A CommitRoom request is the commit and a few bytes of msgpack.
	need := room.MaxCommitBlob(s.host.Limits().MaxMembers) + 64
	need = (need + 1023) &^ 1023
	if cur := cfg.MaxRequestFrame; cur == 0 && need > DefaultMaxRequestFrame || cur != 0 && cur < need {
		cfg.MaxRequestFrame = need
	}
}

// Close stops the push goroutines and ends every subscription; the
// Service refuses new subscriptions afterwards. It does not close the
// store. It is idempotent.
func (s *Service) Close() error {
	s.mu.Lock()
	s.closed = true
	var all []*Subscription
	for _, set := range s.subs {
		for sub := range set {
			all = append(all, sub)
		}
	}
	s.mu.Unlock()
	s.cancel()
	for _, sub := range all {
		sub.Close()
	}
	s.wg.Wait()
	return nil
}

// Domain values of the operations, shared by the Service and RoomClient.

// StoredMessage is a room message as the host stored it: its sequence
// number, when the host accepted it, and the signed blob as its sender
// sent it.
type StoredMessage struct {
	Seq    uint64
	Stored time.Time
	Blob   []byte
}

// MemberInfo is one member of a RoomInfo.
type MemberInfo struct {
	Peer       cryptosuite.PeerID
	Role       store.Role
	KeyPackage [32]byte // the key package the current epoch lists
	// AckedEpoch is the highest epoch whose room key the member
	// acknowledged: a member that cannot read an epoch's messages has
	// not acknowledged it.
	AckedEpoch uint64
	// Left reports that the member asked to leave and awaits the
	// master's remove commit.
	Left bool
}

// RoomInfo is a room's state, its kept history and (a page of) its
// members in ascending order of peer ID.
type RoomInfo struct {
	Room store.Room
	// MasterKey is the identity key of Room.Master: the key its commits
	// and wrapped keys verify under. RoomClient checks it against the
	// master's peer ID (VerifyMasterKey).
	MasterKey *cryptosuite.PublicKey
	Span      store.Span
	Members   []MemberInfo
	// More reports that members after the last one listed exist.
	More bool
}

// PushKind says what a Push tells.
type PushKind uint8

// Kinds of pushes.
const (
	PushMessage    PushKind = 1 // a new message; Message holds it
	PushKeySync    PushKind = 2 // a wrapped key for Epoch is ready: fetch it, open it, acknowledge it
	PushMembership PushKind = 3 // the room changed: Event, Epoch, Peer
	PushLost       PushKind = 4 // Lost pushes were dropped: catch up by cursor
)

// MembershipEvent says how a room changed (wire's event numbers).
type MembershipEvent uint16

// Membership events: the operation of a new epoch's commit, a leave
// request, a deletion.
const (
	EventCreate MembershipEvent = MembershipEvent(wire.EventCreate)
	EventInvite MembershipEvent = MembershipEvent(wire.EventInvite)
	EventRemove MembershipEvent = MembershipEvent(wire.EventRemove)
	EventRotate MembershipEvent = MembershipEvent(wire.EventRotate)
	EventLeave  MembershipEvent = MembershipEvent(wire.EventLeave)
	EventDelete MembershipEvent = MembershipEvent(wire.EventDelete)
)

// Push is one notification to a member.
type Push struct {
	Kind PushKind
	Room store.RoomID
	// Message is the new message (PushMessage).
	Message StoredMessage
	// Epoch is the epoch of the wrapped key (PushKeySync) or the room's
	// epoch after the change (PushMembership; 0 after a delete).
	Epoch uint64
	// Event is how the room changed (PushMembership).
	Event MembershipEvent
	// Peer is the member that asked to leave (EventLeave).
	Peer cryptosuite.PeerID
	// Lost counts the pushes dropped before this one (PushLost).
	Lost uint64

	// frame is the push's wire encoding, made once for every member it
	// goes to (nil: encode it when it is written).
	frame []byte
}

// Subscription receives the pushes for one peer's rooms. Make one with
// Service.Subscribe (sessions get theirs from OnSession). Next may be
// called from one goroutine at a time.
type Subscription struct {
	svc  *Service
	peer cryptosuite.PeerID
	ch   chan *Push    // shared with the other subscribers: read only
	wake chan struct{} // signalled when a push is dropped
	lost atomic.Uint64
	done chan struct{}
	once sync.Once

	// start, if set, starts the session's push loop; deliver calls it
	// once, under the Service's lock.
	start func()
	// frames: the reader writes the pushes' wire frames (a session's
	// push loop), so publish encodes them once for all. Set under the
	// Service's lock.
	frames bool

	// pending is a push nextBatch took that did not fit its batch; the
	// next call returns it first. Only the reader touches it.
	pending    Push
	hasPending bool
}

// Subscribe registers a subscription for peer's pushes. Close it when
// done.
func (s *Service) Subscribe(peer cryptosuite.PeerID) (*Subscription, error) {
	sub := &Subscription{
		svc: s, peer: peer, ch: make(chan *Push, s.pushQueue),
		wake: make(chan struct{}, 1), done: make(chan struct{}),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	set := s.subs[peer]
	if set == nil {
		set = map[*Subscription]struct{}{}
		s.subs[peer] = set
	}
	set[sub] = struct{}{}
	if s.poll != nil && len(set) == 1 {
		s.poll.nudge() // a new peer: poll its rooms
	}
	return sub, nil
}

// Close ends the subscription: Next returns ErrClosed. Idempotent.
func (sub *Subscription) Close() {
	sub.once.Do(func() {
		close(sub.done)
		s := sub.svc
		s.mu.Lock()
		if set := s.subs[sub.peer]; set != nil {
			delete(set, sub)
			if len(set) == 0 {
				delete(s.subs, sub.peer)
			}
		}
		s.mu.Unlock()
	})
}

// Next returns the next push, waiting for one until ctx is done or the
// subscription closes (ErrClosed). After drops it returns one PushLost
// with their count before anything else.
func (sub *Subscription) Next(ctx context.Context) (Push, error) {
	p, err := sub.next(ctx.Done())
	if err == nil {
		return p, nil
	}
	if ctx.Err() != nil {
		return Push{}, ctx.Err()
	}
	return Push{}, err
}

func (sub *Subscription) next(stop <-chan struct{}) (Push, error) {
	for {
		if n := sub.lost.Swap(0); n > 0 {
			return Push{Kind: PushLost, Lost: n}, nil
		}
		if sub.hasPending {
			p := sub.pending
			sub.pending, sub.hasPending = Push{}, false
			return p, nil
		}
		select {
		case p := <-sub.ch:
			return *p, nil
		case <-sub.wake:
		case <-stop:
			return Push{}, ErrClosed
		case <-sub.done:
			return Push{}, ErrClosed
		}
	}
}

// deliver queues p without blocking, or counts it lost.
// The caller holds the Service's lock.
func (sub *Subscription) deliver(p *Push) {
	if start := sub.start; start != nil {
		sub.start = nil
		if !sub.svc.closed {
			start()
		}
	}
	select {
	case sub.ch <- p:
	default:
		sub.markLost(1)
	}
}

func (sub *Subscription) markLost(n uint64) {
	sub.lost.Add(n)
	select {
	case sub.wake <- struct{}{}:
	default:
	}
}

// publish delivers p to every subscription of peers, its frame encoded
// once for all of them when one of them writes frames.
func (s *Service) publish(p Push, peers []cryptosuite.PeerID) {
	if s.wantFrames(peers) {
		if b, err := wire.Encode(pushToWire(p)); err == nil {
			p.frame = b
		}
	}
	s.fanOut(&p, peers)
}

// wantFrames reports whether a subscription of peers writes frames. One
// that starts after it encodes its own (nextBatch).
func (s *Service) wantFrames(peers []cryptosuite.PeerID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, peer := range peers {
		for sub := range s.subs[peer] {
			if sub.frames {
				return true
			}
		}
	}
	return false
}

// fanOut queues p, shared as it is, for every subscription of peers: each
// queue holds a pointer to it, which nobody writes through.
func (s *Service) fanOut(p *Push, peers []cryptosuite.PeerID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, peer := range peers {
		for sub := range s.subs[peer] {
			sub.deliver(p)
		}
	}
}

// targets returns the peers pushes about room id go to: its members that
// have not left.
func (s *Service) targets(ctx context.Context, id store.RoomID) []cryptosuite.PeerID {
	s.mu.Lock()
	peers, ok := s.members[id]
	s.mu.Unlock()
	if ok {
		return peers
	}
	ms, err := s.host.Members(ctx, id)
	if err != nil {
		return nil // gone; a push about it reaches nobody
	}
	peers = make([]cryptosuite.PeerID, 0, len(ms))
	for _, m := range ms {
		if m.Leave == nil {
			peers = append(peers, m.Peer)
		}
	}
	s.mu.Lock()
	if len(s.members) >= maxCachedRooms {
		clear(s.members)
	}
	s.members[id] = peers
	s.mu.Unlock()
	return peers
}

// forget drops room id's cached member set after a change.
func (s *Service) forget(id store.RoomID) {
	s.mu.Lock()
	delete(s.members, id)
	s.mu.Unlock()
}

// OnSession registers a session the server established for pushes: its
// pushes go out on a notify stream it opens when the first is due. Only
// the responder's side pushes; other sessions are ignored.
func (s *Service) OnSession(c *Conn) {
	if c.Role() != session.RoleResponder {
		return
	}
	sub, err := s.Subscribe(c.Peer())
	if err != nil {
		return
	}
	// The push loop starts with the first push (deliver), so that an idle
	// session holds no goroutine for it; the subscription ends with the
	// session either way.
	s.mu.Lock()
	sub.frames = true
	sub.start = func() {
		s.wg.Add(1)
		go s.pushLoop(c, sub)
	}
	s.mu.Unlock()
	context.AfterFunc(c.ctx, sub.Close)
}

// pushLoop writes sub's pushes to c's notify stream until c ends or the
// Service closes.
func (s *Service) pushLoop(c *Conn, sub *Subscription) {
	defer s.wg.Done()
	defer sub.Close()
	var (
		mu sync.Mutex // guards st against Close's AfterFunc
		st *Stream
	)
	setStream := func(n *Stream) {
		mu.Lock()
		if st != nil && n == nil {
			st.Close()
		}
		st = n
		mu.Unlock()
	}
	defer setStream(nil)
	// Close fails a write in progress at once instead of after the push
	// timeout.
	stop := context.AfterFunc(s.ctx, func() {
		mu.Lock()
		if st != nil {
			_ = st.SetWriteDeadline(time.Now())
		}
		mu.Unlock()
	})
	defer stop()
	var batch [][]byte
	for {
		var n int
		var err error
		batch, n, err = sub.nextBatch(c.Done(), batch[:0])
		if err != nil {
			return
		}
		if len(batch) == 0 {
			continue // nothing that could be encoded
		}
		mu.Lock()
		cur := st
		mu.Unlock()
		if cur == nil {
			ctx, cancel := context.WithTimeout(s.ctx, s.pushTimeout)
			cur, err = c.OpenStream(ctx, KindNotify)
			cancel()
			if err != nil {
				if errors.Is(err, ErrClosed) || s.ctx.Err() != nil {
					return
				}
				s.log.Debug("opening a notify stream", "peer", c.Peer().Short(), "err", err)
				sub.markLost(uint64(n))
				continue
			}
			setStream(cur)
			if s.ctx.Err() != nil {
				return // closed while opening: the AfterFunc ran already
			}
		}
		_ = cur.SetWriteDeadline(time.Now().Add(s.pushTimeout))
		if s.ctx.Err() != nil {
			return // the AfterFunc may have run before the deadline was set
		}
		if err := cur.WriteFrames(batch...); err != nil {
			s.log.Debug("push failed", "peer", c.Peer().Short(), "err", err)
			setStream(nil)
			sub.markLost(uint64(n))
		}
		clear(batch) // the frames are shared: keep none alive
	}
}

// Batches: the pushes waiting for a subscriber go out in one write of at
// most maxBatchBytes (and one push, however large).
const (
	maxBatchPushes = 64
	maxBatchBytes  = 32 << 10
)

// nextBatch waits for the next push as next does, then takes the pushes
// already waiting after it (without waiting) while they fit a batch, and
// appends their frames to batch. n counts the pushes taken: a push that
// cannot be encoded is logged and dropped.
func (sub *Subscription) nextBatch(stop <-chan struct{}, batch [][]byte) (_ [][]byte, n int, err error) {
	p, err := sub.next(stop)
	if err != nil {
		return batch, 0, err
	}
	size := 0
	for {
		n++
		b := p.frame
		if b == nil {
			if b, err = wire.Encode(pushToWire(p)); err != nil {
				sub.svc.log.Error("encoding a push", "err", err)
			}
		}
		if b != nil {
			batch = append(batch, b)
			size += len(b)
		}
		if len(batch) >= maxBatchPushes || size >= maxBatchBytes || sub.lost.Load() > 0 {
			return batch, n, nil // a PushLost goes first, in a batch of its own
		}
		select {
		case q := <-sub.ch:
			p = *q
			if size+len(p.frame) > maxBatchBytes {
				// Too large to join this batch: it heads the next.
				sub.pending, sub.hasPending = p, true
				return batch, n, nil
			}
		default:
			return batch, n, nil
		}
	}
}

func pushToWire(p Push) wire.Message {
	switch p.Kind {
	case PushMessage:
		return &wire.MessagePush{Room: p.Room[:], Seq: p.Message.Seq, Stored: p.Message.Stored.UnixMilli(), Blob: p.Message.Blob}
	case PushKeySync:
		return &wire.KeySyncPush{Room: p.Room[:], Epoch: p.Epoch}
	case PushMembership:
		m := &wire.MembershipPush{Room: p.Room[:], Epoch: p.Epoch, Event: uint16(p.Event)}
		if p.Event == EventLeave {
			m.Peer = p.Peer[:]
		}
		return m
	}
	return &wire.PushesLost{Count: p.Lost}
}

// The operations. Each takes the caller the front end authenticated (its
// identity key) and returns a typed error for every refusal: room's and
// store's errors, matched with errors.Is (docs/PROTOCOL.md §18.4).

var errNoCaller = errors.New("node: room operation without an authenticated caller")

// PublishKeyPackage verifies and stores the caller's key package.
func (s *Service) PublishKeyPackage(ctx context.Context, caller *cryptosuite.PublicKey, blob []byte) error {
	if caller == nil {
		return errNoCaller
	}
	_, err := s.host.PublishKeyPackage(ctx, caller, blob)
	return err
}

// CreateRoom creates a room from the caller's create commit and returns
// its id. The wrapped keys follow with UploadWrappedKey.
func (s *Service) CreateRoom(ctx context.Context, caller *cryptosuite.PublicKey, commit []byte) (store.RoomID, error) {
	if caller == nil {
		return store.RoomID{}, errNoCaller
	}
	c, err := s.host.CreateRoom(ctx, caller, commit)
	if err != nil {
		return store.RoomID{}, err
	}
	id := store.RoomID(c.Room)
	s.forget(id)
	if s.poll == nil || s.poll.claimEpoch(id, c.Epoch) {
		s.publish(Push{Kind: PushMembership, Room: id, Epoch: c.Epoch, Event: EventCreate}, commitPeers(c))
	}
	return id, nil
}

func commitPeers(c *room.Commit) []cryptosuite.PeerID {
	out := make([]cryptosuite.PeerID, len(c.Members))
	for i, m := range c.Members {
		out[i] = m.Peer
	}
	return out
}

// UploadWrappedKey stores a wrapped key the master uploads and tells the
// member it is for (a key-sync push).
func (s *Service) UploadWrappedKey(ctx context.Context, caller *cryptosuite.PublicKey, id store.RoomID, blob []byte) error {
	if caller == nil {
		return errNoCaller
	}
	w, err := s.host.UploadWrappedKey(ctx, caller, id, blob)
	if err != nil {
		return err
	}
	if s.poll == nil || s.poll.claimKey(keyRef{id, w.Epoch, w.Member}) {
		s.publish(Push{Kind: PushKeySync, Room: id, Epoch: w.Epoch}, []cryptosuite.PeerID{w.Member})
	}
	return nil
}

// ListRooms lists the caller's rooms after after, at most limit.
func (s *Service) ListRooms(ctx context.Context, caller *cryptosuite.PublicKey, after store.RoomID, limit int) ([]room.RoomListing, error) {
	if caller == nil {
		return nil, errNoCaller
	}
	return s.host.ListRooms(ctx, caller.PeerID(), after, limit)
}

// RoomInfo returns a room's state and the page of its members whose peer
// IDs follow after (the zero ID: from the first), at most limit.
// Members only.
func (s *Service) RoomInfo(ctx context.Context, caller *cryptosuite.PublicKey, id store.RoomID, after cryptosuite.PeerID, limit int) (*RoomInfo, error) {
	if caller == nil {
		return nil, errNoCaller
	}
	if limit < 1 || limit > wire.MaxInfoMembers {
		return nil, fmt.Errorf("%w: member page of %d (1 to %d)", room.ErrBadRequest, limit, wire.MaxInfoMembers)
	}
	info, err := s.host.Info(ctx, caller.PeerID(), id)
	if err != nil {
		return nil, err
	}
	ms := info.Members
	sort.Slice(ms, func(i, j int) bool { return bytes.Compare(ms[i].Peer[:], ms[j].Peer[:]) < 0 })
	start := 0
	if !after.IsZero() {
		start = sort.Search(len(ms), func(i int) bool { return bytes.Compare(ms[i].Peer[:], after[:]) > 0 })
	}
	end := min(len(ms), start+limit)
	mk, err := s.masterKey(ctx, id, info.Room.Master)
	if err != nil {
		return nil, err
	}
	out := &RoomInfo{Room: info.Room, MasterKey: mk, Span: info.Span, More: end < len(ms), Members: make([]MemberInfo, 0, end-start)}
	for _, m := range ms[start:end] {
		out.Members = append(out.Members, MemberInfo{
			Peer: m.Peer, Role: m.Role, KeyPackage: m.KeyPackageHash, AckedEpoch: m.AckedEpoch, Left: m.Leave != nil,
		})
	}
	return out, nil
}

// Commit applies the master's next commit (invite, remove, rotate) and
// returns the room's new epoch. Every member of the epoch before or after
// gets a membership push (a removed member learns it was removed).
func (s *Service) Commit(ctx context.Context, caller *cryptosuite.PublicKey, id store.RoomID, commit []byte) (uint64, error) {
	if caller == nil {
		return 0, errNoCaller
	}
	res, err := s.host.ApplyCommit(ctx, caller, id, commit)
	if err != nil {
		return 0, err
	}
	if res.Retry {
		return res.Commit.Epoch, nil
	}
	s.forget(id)
	if s.poll != nil && !s.poll.claimEpoch(id, res.Commit.Epoch) {
		return res.Commit.Epoch, nil // the poller found it first and pushed it
	}
	peers := commitPeers(res.Commit)
	for _, m := range res.Previous {
		if !containsPeer(peers, m.Peer) {
			peers = append(peers, m.Peer)
		}
	}
	s.publish(Push{Kind: PushMembership, Room: id, Epoch: res.Commit.Epoch, Event: MembershipEvent(res.Commit.Operation)}, peers)
	return res.Commit.Epoch, nil
}

func containsPeer(ps []cryptosuite.PeerID, p cryptosuite.PeerID) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

// Leave applies the caller's leave request at once and tells the room's
// members (the master's client turns it into a remove commit).
func (s *Service) Leave(ctx context.Context, caller *cryptosuite.PublicKey, id store.RoomID, blob []byte) error {
	if caller == nil {
		return errNoCaller
	}
	lr, err := s.host.Leave(ctx, caller, id, blob)
	if err != nil {
		return err
	}
	s.forget(id)
	r, err := s.host.Store().GetRoom(ctx, id)
	if err != nil {
		return nil // deleted meanwhile: nobody to tell
	}
	s.publish(Push{Kind: PushMembership, Room: id, Epoch: r.Epoch, Event: EventLeave, Peer: lr.Member}, s.targets(ctx, id))
	return nil
}

// Delete deletes the caller's room and tells its members.
func (s *Service) Delete(ctx context.Context, caller *cryptosuite.PublicKey, id store.RoomID) error {
	if caller == nil {
		return errNoCaller
	}
	members, err := s.host.Delete(ctx, caller.PeerID(), id)
	if err != nil {
		return err
	}
	s.forget(id)
	if s.poll != nil && !s.poll.claimDelete(id) {
		return nil // the poller found it gone first and pushed it
	}
	peers := make([]cryptosuite.PeerID, len(members))
	for i, m := range members {
		peers[i] = m.Peer
	}
	s.publish(Push{Kind: PushMembership, Room: id, Event: EventDelete}, peers)
	return nil
}

// Send stores the caller's message and pushes it, with its blob, to every
// member that has not left (the sender's own sessions included: members
// tell pushes apart by sequence number, and a retried send may push its
// message again).
func (s *Service) Send(ctx context.Context, caller *cryptosuite.PublicKey, id store.RoomID, blob []byte) (StoredMessage, error) {
	if caller == nil {
		return StoredMessage{}, errNoCaller
	}
	m, err := s.host.Send(ctx, caller.PeerID(), id, blob)
	if err != nil {
		return StoredMessage{}, err
	}
	sm := StoredMessage{Seq: m.Seq, Stored: m.Stored, Blob: m.Blob}
	if s.poll == nil || s.poll.claimMessage(id, sm.Seq) {
		s.publish(Push{Kind: PushMessage, Room: id, Message: sm}, s.targets(ctx, id))
	}
	return sm, nil
}

// Read returns the room's messages after the cursor, at most limit.
func (s *Service) Read(ctx context.Context, caller *cryptosuite.PublicKey, id store.RoomID, after uint64, limit int) ([]StoredMessage, error) {
	if caller == nil {
		return nil, errNoCaller
	}
	ms, err := s.host.Read(ctx, caller.PeerID(), id, after, limit)
	if err != nil {
		return nil, err
	}
	out := make([]StoredMessage, len(ms))
	for i, m := range ms {
		out[i] = StoredMessage{Seq: m.Seq, Stored: m.Stored, Blob: m.Blob}
	}
	return out, nil
}

// FetchWrappedKey returns the caller's wrapped key of epoch.
func (s *Service) FetchWrappedKey(ctx context.Context, caller *cryptosuite.PublicKey, id store.RoomID, epoch uint64) ([]byte, error) {
	if caller == nil {
		return nil, errNoCaller
	}
	return s.host.FetchWrappedKey(ctx, caller.PeerID(), id, epoch)
}

// Ack records that the caller holds the room key of epoch.
func (s *Service) Ack(ctx context.Context, caller *cryptosuite.PublicKey, id store.RoomID, epoch uint64) error {
	if caller == nil {
		return errNoCaller
	}
	return s.host.Ack(ctx, caller.PeerID(), id, epoch)
}

// FetchCommits returns the room's commits after the epoch, at most limit,
// and the room's current epoch.
func (s *Service) FetchCommits(ctx context.Context, caller *cryptosuite.PublicKey, id store.RoomID, after uint64, limit int) ([][]byte, uint64, error) {
	if caller == nil {
		return nil, 0, errNoCaller
	}
	cs, epoch, err := s.host.Commits(ctx, caller.PeerID(), id, after, limit)
	if err != nil {
		return nil, 0, err
	}
	out := make([][]byte, len(cs))
	for i, c := range cs {
		out[i] = c.Blob
	}
	return out, epoch, nil
}

// maxMasterKeys bounds the Service's cache of masters' identity keys.
const maxMasterKeys = 1024

// ErrWrongMasterKey reports a host that served, as a room's master's
// identity key, a key whose SHA-256 is not the master's peer ID.
var ErrWrongMasterKey = errors.New("node: the host's master key is not the master's")

// VerifyMasterKey checks what a host says of a room's master (RoomInfo
// and CommitList replies carry both): spki must be an identity key whose
// SHA-256 is the peer ID master, else the error matches
// ErrWrongMasterKey. The key then verifies the room's commits and
// wrapped keys (room.VerifyCommit, room.NewMemberState).
func VerifyMasterKey(master cryptosuite.PeerID, spki []byte) (*cryptosuite.PublicKey, error) {
	pk, err := cryptosuite.ParsePublicKey(spki)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrWrongMasterKey, err)
	}
	if pk.PeerID() != master {
		return nil, fmt.Errorf("%w: a key of %s for master %s", ErrWrongMasterKey, pk.PeerID().Short(), master.Short())
	}
	return pk, nil
}

// masterKey returns the identity key of master, room id's master, from
// the key package its member record names: a key package the host
// verified when it was published and keeps while a member names it. The
// caller's right to the room was checked by the operation before. The
// client checks that the key's SHA-256 is the master's peer ID, so the
// host vouches for nothing; since a peer ID has one key, the keys are
// cached by peer ID. Both front ends serve it: wire's RoomInfoReply and
// CommitList, the shim's room info and commit list.
func (s *Service) masterKey(ctx context.Context, id store.RoomID, master cryptosuite.PeerID) (*cryptosuite.PublicKey, error) {
	s.mu.Lock()
	k, ok := s.masterKeys[master]
	s.mu.Unlock()
	if ok {
		return k, nil
	}
	m, err := s.host.Store().GetMember(ctx, id, master)
	if err != nil {
		return nil, err
	}
	blob, err := s.host.KeyPackage(ctx, m.KeyPackageHash)
	if err != nil {
		return nil, err
	}
	kp, err := room.VerifyStoredKeyPackage(blob)
	if err != nil {
		return nil, err
	}
	if kp.Owner != master {
		return nil, fmt.Errorf("node: the key package of master %s is %s's", master.Short(), kp.Owner.Short())
	}
	s.mu.Lock()
	if len(s.masterKeys) >= maxMasterKeys {
		clear(s.masterKeys)
	}
	s.masterKeys[master] = kp.IdentityKey
	s.mu.Unlock()
	return kp.IdentityKey, nil
}

// roomMasterKey returns the identity key of room id's master (masterKey).
func (s *Service) roomMasterKey(ctx context.Context, id store.RoomID) (*cryptosuite.PublicKey, error) {
	rm, err := s.host.Store().GetRoom(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.masterKey(ctx, id, rm.Master)
}

// FetchKeyPackage returns the key package with hash.
func (s *Service) FetchKeyPackage(ctx context.Context, caller *cryptosuite.PublicKey, hash [32]byte) ([]byte, error) {
	if caller == nil {
		return nil, errNoCaller
	}
	return s.host.KeyPackage(ctx, hash)
}

// LatestKeyPackage returns peer's latest unexpired key package.
func (s *Service) LatestKeyPackage(ctx context.Context, caller *cryptosuite.PublicKey, peer cryptosuite.PeerID) ([]byte, error) {
	if caller == nil {
		return nil, errNoCaller
	}
	return s.host.LatestKeyPackage(ctx, peer)
}

// FetchLeave returns a member's leave request, for the master.
func (s *Service) FetchLeave(ctx context.Context, caller *cryptosuite.PublicKey, id store.RoomID, peer cryptosuite.PeerID) ([]byte, error) {
	if caller == nil {
		return nil, errNoCaller
	}
	return s.host.LeaveRequest(ctx, caller.PeerID(), id, peer)
}
