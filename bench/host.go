package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/node"
	"github.com/lanpeer/lanpeer/room"
	"github.com/lanpeer/lanpeer/store"
	"github.com/lanpeer/lanpeer/wire"
)

// host is a listening peer serving rooms, as `lanpeer listen` does, on
// 127.0.0.1.
type host struct {
	id    *cryptosuite.Identity
	srv   *node.Server
	svc   *node.Service
	st    store.Store
	stop  context.CancelFunc
	wg    sync.WaitGroup
	serve error
}

// startHost starts a host with identity id (a fresh Ed25519 one if nil).
// The limits that a benchmark would hit from one machine are lifted:
// handshake rate, sessions per address and per identity; tune, if set,
// adjusts the rest.
func startHost(ctx context.Context, o *Options, id *cryptosuite.Identity, tune func(*node.Config)) (*host, error) {
	if id == nil {
		var err error
		if id, err = cryptosuite.GenerateIdentity(cryptosuite.KeyEd25519); err != nil {
			return nil, err
		}
	}
	st, err := o.newStore(ctx)
	if err != nil {
		return nil, err
	}
	svc, err := node.NewService(node.ServiceConfig{Store: st, SkipMessageSignatures: o.SkipMessageSignatures})
	if err != nil {
		st.Close()
		return nil, err
	}
	cfg := &node.Config{
		Identity: id, AllowRSA: true,
		HandshakeRate: -1, MaxSessionsPerPeer: -1, MaxSessionsPerAddr: -1,
		MaxPendingHandshakes: 1024, MaxSessions: 1 << 20,
	}
	if tune != nil {
		tune(cfg)
	}
	svc.Configure(cfg)
	srv, err := node.Listen("127.0.0.1:0", cfg)
	if err != nil {
		svc.Close()
		st.Close()
		return nil, err
	}
	h := &host{id: id, srv: srv, svc: svc, st: st}
	sctx, cancel := context.WithCancel(context.Background())
	h.stop = cancel
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		h.serve = srv.Serve(sctx)
	}()
	return h, nil
}

// target is the host's address pinned to its peer ID.
func (h *host) target() string { return h.id.PeerID().String() + "@" + h.srv.Addr().String() }

func (h *host) close() {
	h.stop()
	h.srv.Close()
	h.wg.Wait()
	h.svc.Close()
	h.st.Close()
}

// receiver is a member's handler of notify streams: it decodes every
// push frame, counts the messages and, while a latency run is on,
// stamps when each arrived.
type receiver struct {
	delivered atomic.Int64
	lost      atomic.Int64
	bad       atomic.Int64
	lat       atomic.Pointer[latencyRun]
	slot      int
}

// ServeStream reads pushes until the stream ends.
func (r *receiver) ServeStream(ctx context.Context, s *node.Stream) {
	for {
		p, err := s.ReadFrame()
		if err != nil {
			return
		}
		m, err := wire.Decode(p)
		if err != nil {
			r.bad.Add(1)
			s.Fail(wire.CodeProtocol)
			return
		}
		switch m := m.(type) {
		case *wire.MessagePush:
			r.delivered.Add(1)
			if l := r.lat.Load(); l != nil {
				l.arrived(r.slot, m.Seq, time.Now())
			}
		case *wire.PushesLost:
			r.lost.Add(int64(m.Count))
		}
	}
}

// client is one peer with a session to the host: an identity of its
// own, from an address of its own.
type client struct {
	id      *cryptosuite.Identity
	secrets *room.KeyPackageSecrets
	conn    *node.Conn
	rc      *node.RoomClient
	recv    *receiver
}

// dialClient makes a fresh Ed25519 identity and key package, dials the
// host from 127.0.0.N (N from i) and publishes the key package.
func dialClient(ctx context.Context, h *host, i int) (*client, error) {
	id, err := cryptosuite.GenerateIdentity(cryptosuite.KeyEd25519)
	if err != nil {
		return nil, err
	}
	secrets, err := room.GenerateKeyPackage(id, 0, time.Now(), 0)
	if err != nil {
		return nil, err
	}
	c := &client{id: id, secrets: secrets, recv: &receiver{}}
	dctx, cancel := context.WithTimeout(ctx, hang)
	defer cancel()
	c.conn, err = node.Dial(dctx, h.target(), &node.Config{
		Identity: id, LocalAddr: loopbackAddr(i) + ":0",
		Handlers: map[node.StreamKind]node.Handler{node.KindNotify: c.recv},
	})
	if err != nil {
		return nil, err
	}
	c.rc = node.NewRoomClient(c.conn)
	if err := c.rc.PublishKeyPackage(dctx, secrets.KeyPackage().Blob()); err != nil {
		c.conn.Close()
		return nil, err
	}
	return c, nil
}

// benchRoom is a room whose master sends and whose other members
// receive.
type benchRoom struct {
	id      store.RoomID
	sender  *client
	st      *room.MemberState
	members []*client
}

// newBenchRoom dials a sender and n members and makes them a room of the
// suite's cipher: the sender creates it and invites the others in one
// commit. Members hold no room key: they count pushes, they do not open
// them.
func newBenchRoom(ctx context.Context, h *host, n int, suite cryptosuite.AEADID) (*benchRoom, error) {
	sender, err := dialClient(ctx, h, 0)
	if err != nil {
		return nil, err
	}
	br := &benchRoom{sender: sender}
	ok := false
	defer func() {
		if !ok {
			br.close()
		}
	}()
	for i := range n {
		m, err := dialClient(ctx, h, i+1)
		if err != nil {
			return nil, fmt.Errorf("member %d: %w", i, err)
		}
		br.members = append(br.members, m)
	}
	rctx, cancel := context.WithTimeout(ctx, hang)
	defer cancel()
	prop, err := room.NewRoom(room.RoomConfig{Master: sender.id, KeyPackage: sender.secrets.KeyPackage(), Name: "bench", Suite: suite, Now: time.Now()})
	if err != nil {
		return nil, err
	}
	if err := sender.rc.CreateProposal(rctx, prop); err != nil {
		return nil, err
	}
	if br.st, err = room.NewMemberState(prop.Commit, sender.id.Public(), sender.id.PeerID(), nil); err != nil {
		return nil, err
	}
	if err := openOwnKey(br.st, prop, sender); err != nil {
		return nil, err
	}
	br.id = store.RoomID(prop.Info.Room)
	if n > 0 {
		kps := []*room.KeyPackage{sender.secrets.KeyPackage()}
		ids := make([]cryptosuite.PeerID, n)
		for i, m := range br.members {
			kps = append(kps, m.secrets.KeyPackage())
			ids[i] = m.id.PeerID()
		}
		prop, err := br.st.Invite(sender.id, kps, time.Now(), ids...)
		if err != nil {
			return nil, err
		}
		if err := sender.rc.Invite(rctx, prop); err != nil {
			return nil, err
		}
		if err := br.st.ApplyProposal(prop, sender.secrets); err != nil {
			return nil, err
		}
	}
	ok = true
	return br, nil
}

func openOwnKey(st *room.MemberState, prop *room.Proposal, c *client) error {
	for _, w := range prop.Wrapped {
		if w.Member == c.id.PeerID() {
			_, err := st.OpenWrappedKey(w.Blob, c.secrets)
			return err
		}
	}
	return errors.New("bench: no wrapped key for the master")
}

// seal seals text as a new message with a random id.
func (br *benchRoom) seal(text string) ([]byte, error) {
	var id [room.MessageIDSize]byte
	fillRandom(id[:])
	return br.st.SealMessage(br.sender.secrets, text, id)
}

func (br *benchRoom) close() {
	if br.sender != nil {
		br.sender.conn.Close()
	}
	for _, m := range br.members {
		m.conn.Close()
	}
}

// minDelivered is the fewest messages any member has received.
func (br *benchRoom) minDelivered() int64 {
	least := int64(-1)
	for _, m := range br.members {
		if d := m.recv.delivered.Load(); least < 0 || d < least {
			least = d
		}
	}
	return max(least, 0)
}

func (br *benchRoom) totals() (delivered, lost, bad int64) {
	for _, m := range br.members {
		delivered += m.recv.delivered.Load()
		lost += m.recv.lost.Load()
		bad += m.recv.bad.Load()
	}
	return
}
