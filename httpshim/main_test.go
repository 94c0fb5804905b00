package httpshim

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/node"
	"github.com/lanpeer/lanpeer/room"
	"github.com/lanpeer/lanpeer/store"
	"github.com/lanpeer/lanpeer/store/memory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// hang is every test's hang deadline.
const hang = 30 * time.Second

func testLogger() *slog.Logger {
	if os.Getenv("LANPEER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func tctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	t.Cleanup(cancel)
	return ctx
}

func edIdentity(t testing.TB) *cryptosuite.Identity {
	t.Helper()
	id, err := cryptosuite.GenerateIdentity(cryptosuite.KeyEd25519)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// rsaIdentity reads a committed RSA fixture (never generated in tests).
func rsaIdentity(t testing.TB, name string) *cryptosuite.Identity {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "cryptosuite", "testdata", "keys", name+".pem"))
	if err != nil {
		t.Fatal(err)
	}
	id, err := cryptosuite.ParseIdentityPEM(b)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// host is a listener: a Service over a memory store, the shim on a
// loopback HTTP server, and (with tcp) the TCP front end over the same
// Service.
type host struct {
	id   *cryptosuite.Identity
	svc  *node.Service
	shim *Server
	url  string
	tcp  *node.Server
}

type hostOpts struct {
	tcp  bool
	tune func(*Config)
	// skipSigs: the host stores messages without verifying their
	// signatures (node.ServiceConfig.SkipMessageSignatures).
	skipSigs bool
}

func startHost(t testing.TB, o hostOpts) *host {
	t.Helper()
	mem, err := memory.New(memory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := node.NewService(node.ServiceConfig{Store: mem, Logger: testLogger(), SkipMessageSignatures: o.skipSigs})
	if err != nil {
		t.Fatal(err)
	}
	h := &host{id: edIdentity(t), svc: svc}
	cfg := Config{Service: svc, Identity: h.id, Logger: testLogger(), AllowRSA: true, HandshakeRate: -1}
	if o.tune != nil {
		o.tune(&cfg)
	}
	h.shim, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.url = "http://" + ln.Addr().String()
	hsrv := h.shim.HTTPServer()
	served := make(chan error, 1)
	go func() { served <- hsrv.Serve(ln) }()
	var tcpDone chan error
	if o.tcp {
		ncfg := &node.Config{Identity: h.id, Logger: testLogger(), HandshakeRate: -1, MaxSessionsPerAddr: -1}
		svc.Configure(ncfg)
		h.tcp, err = node.Listen("127.0.0.1:0", ncfg)
		if err != nil {
			t.Fatal(err)
		}
		tcpDone = make(chan error, 1)
		go func() { tcpDone <- h.tcp.Serve(context.Background()) }()
	}
	t.Cleanup(func() {
		h.shim.Close()
		ctx, cancel := context.WithTimeout(context.Background(), hang)
		defer cancel()
		if err := hsrv.Shutdown(ctx); err != nil {
			t.Errorf("HTTP shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
		if h.tcp != nil {
			h.tcp.Close()
			<-tcpDone
		}
		svc.Close()
		mem.Close()
	})
	return h
}

// client returns a Client of id (a fresh Ed25519 one if nil) with its own
// keep-alive transport, closed when the test ends.
func (h *host) client(t testing.TB, id *cryptosuite.Identity) *Client {
	t.Helper()
	if id == nil {
		id = edIdentity(t)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 4}
	t.Cleanup(tr.CloseIdleConnections)
	return &Client{BaseURL: h.url, HTTPClient: &http.Client{Transport: tr}, Identity: id, Expected: h.id.PeerID(), AllowRSA: true}
}

// connect returns a client past its handshake.
func (h *host) connect(t testing.TB, id *cryptosuite.Identity) *Client {
	t.Helper()
	c := h.client(t, id)
	if err := c.Handshake(tctx(t)); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	return c
}

// member is one room member's client side over HTTP or TCP: what a
// lanpeer client does, written out for the tests.
type member struct {
	name    string
	id      *cryptosuite.Identity
	secrets *room.KeyPackageSecrets
	http    *Client
	tcp     *node.RoomClient
	room    store.RoomID
	st      *room.MemberState
}

func newSecrets(t testing.TB, id *cryptosuite.Identity) *room.KeyPackageSecrets {
	t.Helper()
	s, err := room.GenerateKeyPackage(id, 0, time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// httpMember connects over HTTP and publishes its key package.
func (h *host) httpMember(t testing.TB, name string) *member {
	t.Helper()
	m := &member{name: name, id: edIdentity(t)}
	m.secrets = newSecrets(t, m.id)
	m.http = h.connect(t, m.id)
	if err := m.http.PublishKeyPackage(tctx(t), m.secrets.KeyPackage().Blob()); err != nil {
		t.Fatalf("%s: key package: %v", name, err)
	}
	return m
}

// tcpMember dials the TCP front end and publishes its key package.
func (h *host) tcpMember(t testing.TB, name string) *member {
	t.Helper()
	m := &member{name: name, id: edIdentity(t)}
	m.secrets = newSecrets(t, m.id)
	c, err := node.Dial(tctx(t), h.id.PeerID().String()+"@"+h.tcp.Addr().String(), &node.Config{Identity: m.id, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	m.tcp = node.NewRoomClient(c)
	if err := m.tcp.PublishKeyPackage(tctx(t), m.secrets.KeyPackage().Blob()); err != nil {
		t.Fatalf("%s: key package: %v", name, err)
	}
	return m
}

// The operations over whichever front end the member uses.

func (m *member) latestKeyPackage(t testing.TB, peer cryptosuite.PeerID) *room.KeyPackage {
	t.Helper()
	var b []byte
	var err error
	if m.http != nil {
		b, err = m.http.LatestKeyPackage(tctx(t), peer)
	} else {
		b, err = m.tcp.LatestKeyPackage(tctx(t), peer)
	}
	if err != nil {
		t.Fatalf("%s: key package of %s: %v", m.name, peer.Short(), err)
	}
	kp, err := room.VerifyKeyPackage(b, time.Now())
	if err != nil || kp.Owner != peer {
		t.Fatalf("%s: key package of %s: %v", m.name, peer.Short(), err)
	}
	return kp
}

func (m *member) propose(t testing.TB, p *room.Proposal) {
	t.Helper()
	var err error
	switch {
	case m.http != nil:
		err = m.http.Propose(tctx(t), p)
	case p.Info.Operation == room.OpCreate:
		err = m.tcp.CreateProposal(tctx(t), p)
	default:
		err = m.tcp.Invite(tctx(t), p)
	}
	if err != nil {
		t.Fatalf("%s: %v: %v", m.name, p.Info.Operation, err)
	}
}

func (m *member) createRoom(t testing.TB, name string) store.RoomID {
	t.Helper()
	prop, err := room.NewRoom(room.RoomConfig{Master: m.id, KeyPackage: m.secrets.KeyPackage(), Name: name, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	m.propose(t, prop)
	if m.st, err = room.NewMemberState(prop.Commit, m.id.Public(), m.id.PeerID(), nil); err != nil {
		t.Fatal(err)
	}
	m.room = store.RoomID(prop.Info.Room)
	m.syncKey(t)
	return m.room
}

func (m *member) invite(t testing.TB, others ...*member) {
	t.Helper()
	epoch, _ := m.st.Head()
	ms, err := m.st.Members(epoch)
	if err != nil {
		t.Fatal(err)
	}
	var kps []*room.KeyPackage
	for _, x := range ms {
		kps = append(kps, m.latestKeyPackage(t, x.Peer))
	}
	var ids []cryptosuite.PeerID
	for _, o := range others {
		kps = append(kps, m.latestKeyPackage(t, o.id.PeerID()))
		ids = append(ids, o.id.PeerID())
	}
	prop, err := m.st.Invite(m.id, kps, time.Now(), ids...)
	if err != nil {
		t.Fatal(err)
	}
	m.propose(t, prop)
	if err := m.st.ApplyProposal(prop, m.secrets); err != nil {
		t.Fatal(err)
	}
	m.ack(t, prop.Info.Epoch)
}

func (m *member) ack(t testing.TB, epoch uint64) {
	t.Helper()
	var err error
	if m.http != nil {
		err = m.http.Ack(tctx(t), m.room, epoch)
	} else {
		err = m.tcp.Ack(tctx(t), m.room, epoch)
	}
	if err != nil {
		t.Fatalf("%s: ack: %v", m.name, err)
	}
}

// join starts m's state of a room m was invited to by master: over HTTP
// with the master key the commit list carries (checked against the
// master's peer ID), over TCP with the master's key package.
func (m *member) join(t testing.TB, id store.RoomID, master *member) {
	t.Helper()
	var commits [][]byte
	var mkey *cryptosuite.PublicKey
	var err error
	if m.http != nil {
		var cl *CommitListJSON
		if cl, err = m.http.CommitList(tctx(t), id, 0, 100); err == nil {
			commits = cl.Commits
			mkey, err = VerifyMasterKey(cl.Master, cl.MasterKey)
			if err == nil && mkey.PeerID() != master.id.PeerID() {
				t.Fatalf("%s: the commit list names master %s, not %s", m.name, mkey.PeerID().Short(), master.name)
			}
		}
	} else {
		mkey = m.latestKeyPackage(t, master.id.PeerID()).IdentityKey
		commits, _, err = m.tcp.FetchCommits(tctx(t), id, 0, 100)
	}
	if err != nil {
		t.Fatalf("%s: commits: %v", m.name, err)
	}
	for i, c := range commits {
		st, err := room.NewMemberState(c, mkey, m.id.PeerID(), nil)
		if errors.Is(err, room.ErrNotMember) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, next := range commits[i+1:] {
			if err := st.ApplyCommit(next); err != nil {
				t.Fatal(err)
			}
		}
		m.st, m.room = st, id
		m.syncKey(t)
		return
	}
	t.Fatalf("%s: no commit lists it", m.name)
}

func (m *member) syncKey(t testing.TB) {
	t.Helper()
	epoch, _ := m.st.Head()
	if m.st.HasKey(epoch) {
		return
	}
	var w []byte
	var err error
	if m.http != nil {
		w, err = m.http.FetchWrappedKey(tctx(t), m.room, epoch)
	} else {
		w, err = m.tcp.FetchWrappedKey(tctx(t), m.room, epoch)
	}
	if err != nil {
		t.Fatalf("%s: wrapped key: %v", m.name, err)
	}
	if _, err := m.st.OpenWrappedKey(w, m.secrets); err != nil {
		t.Fatal(err)
	}
	m.ack(t, epoch)
}

func (m *member) seal(t testing.TB, text string) []byte {
	t.Helper()
	var id [room.MessageIDSize]byte
	rand.Read(id[:])
	b, err := m.st.SealMessage(m.secrets, text, id)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (m *member) send(t testing.TB, text string) uint64 {
	t.Helper()
	blob := m.seal(t, text)
	var seq uint64
	var err error
	if m.http != nil {
		seq, err = m.http.Send(tctx(t), m.room, blob)
	} else {
		seq, err = m.tcp.Send(tctx(t), m.room, blob)
	}
	if err != nil {
		t.Fatalf("%s: send: %v", m.name, err)
	}
	return seq
}

// open opens a message blob read from the room, fetching its signer's key
// package.
func (m *member) open(t testing.TB, blob []byte) string {
	t.Helper()
	_, hash, err := room.MessageSigner(blob)
	if err != nil {
		t.Fatal(err)
	}
	var b []byte
	if m.http != nil {
		b, err = m.http.FetchKeyPackage(tctx(t), hash)
	} else {
		b, err = m.tcp.FetchKeyPackage(tctx(t), hash)
	}
	if err != nil {
		t.Fatalf("%s: signer: %v", m.name, err)
	}
	kp, err := room.VerifyStoredKeyPackage(b)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := m.st.OpenHistory(blob, kp)
	if err != nil {
		t.Fatalf("%s: open: %v", m.name, err)
	}
	return pt.Text
}

// readAll reads every message after the cursor.
func (m *member) read(t testing.TB, after uint64) []string {
	t.Helper()
	var blobs [][]byte
	if m.http != nil {
		ms, err := m.http.Read(tctx(t), m.room, after, 100, 0)
		if err != nil {
			t.Fatalf("%s: read: %v", m.name, err)
		}
		for _, x := range ms {
			blobs = append(blobs, x.Message)
		}
	} else {
		ms, err := m.tcp.Read(tctx(t), m.room, after, 100)
		if err != nil {
			t.Fatalf("%s: read: %v", m.name, err)
		}
		for _, x := range ms {
			blobs = append(blobs, x.Blob)
		}
	}
	var out []string
	for _, b := range blobs {
		out = append(out, m.open(t, b))
	}
	return out
}
