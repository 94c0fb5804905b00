package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/room"
	"github.com/lanpeer/lanpeer/store"
	"github.com/lanpeer/lanpeer/store/memory"
)

// A host with a Service over a recording memory store, and peers that dial
// it and keep a room.MemberState each: what the CLI's client side does,
// written out for the tests.

// recordingStore keeps a copy of every blob and name handed to the store,
// so a test can search all of it for plaintext.
type recordingStore struct {
	store.Store
	mu    sync.Mutex
	blobs [][]byte
}

func (r *recordingStore) record(bs ...[]byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range bs {
		r.blobs = append(r.blobs, bytes.Clone(b))
	}
}

// contains reports whether any recorded blob holds marker.
func (r *recordingStore) contains(marker []byte) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range r.blobs {
		if bytes.Contains(b, marker) {
			return true
		}
	}
	return false
}

func (r *recordingStore) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.blobs)
}

func (r *recordingStore) PutKeyPackage(ctx context.Context, kp store.KeyPackage, now time.Time) error {
	r.record(kp.Blob)
	return r.Store.PutKeyPackage(ctx, kp, now)
}

func (r *recordingStore) CreateRoom(ctx context.Context, rm store.Room, c store.Commit, ms []store.Member) error {
	r.record([]byte(rm.Name), c.Blob)
	return r.Store.CreateRoom(ctx, rm, c, ms)
}

func (r *recordingStore) ApplyCommit(ctx context.Context, id store.RoomID, from uint64, c store.Commit, ms []store.Member) (store.Room, error) {
	r.record(c.Blob)
	return r.Store.ApplyCommit(ctx, id, from, c, ms)
}

func (r *recordingStore) RecordLeave(ctx context.Context, id store.RoomID, p store.PeerID, req []byte) error {
	r.record(req)
	return r.Store.RecordLeave(ctx, id, p, req)
}

func (r *recordingStore) PutWrappedKey(ctx context.Context, wk store.WrappedKey) error {
	r.record(wk.Blob)
	return r.Store.PutWrappedKey(ctx, wk)
}

func (r *recordingStore) AppendMessage(ctx context.Context, m store.Message) (store.Message, error) {
	r.record(m.Blob)
	return r.Store.AppendMessage(ctx, m)
}

func (r *recordingStore) PutDirectoryRecord(ctx context.Context, rec store.DirectoryRecord, now time.Time) error {
	r.record(rec.Blob)
	return r.Store.PutDirectoryRecord(ctx, rec, now)
}

type roomHost struct {
	srv *Server
	svc *Service
	rec *recordingStore
}

// startRoomHost serves rooms on loopback until the test ends. tune, if
// set, adjusts the node and Service configurations first.
func startRoomHost(t testing.TB, opts memory.Options, tune func(*Config, *ServiceConfig)) *roomHost {
	t.Helper()
	mem, err := memory.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recordingStore{Store: mem}
	scfg := ServiceConfig{Store: rec, Logger: testLogger()}
	cfg := &Config{Identity: identity(t, "ed-s"), Logger: testLogger(), HandshakeRate: -1, MaxSessionsPerAddr: -1}
	if tune != nil {
		tune(cfg, &scfg)
	}
	svc, err := NewService(scfg)
	if err != nil {
		t.Fatal(err)
	}
	svc.Configure(cfg)
	srv := startServer(t, cfg)
	t.Cleanup(func() {
		svc.Close()
		mem.Close()
	})
	return &roomHost{srv: srv, svc: svc, rec: rec}
}

// roomPeer is one member's client: its identity and key package, its
// session with the host, and its state of the test's room.
type roomPeer struct {
	name    string
	id      *cryptosuite.Identity
	secrets *room.KeyPackageSecrets
	h       *roomHost
	conn    *Conn
	rc      *RoomClient
	pushes  *Pushes
	room    store.RoomID
	st      *room.MemberState
	kps     map[[32]byte]*room.KeyPackage // verified key packages of signers
}

// tctx is a context that ends at the test's hang deadline.
func tctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	t.Cleanup(cancel)
	return ctx
}

// newRoomPeer makes a peer with a fresh Ed25519 identity and key package,
// dials the host and publishes the key package, as every session does.
func (h *roomHost) newRoomPeer(t testing.TB, name string) *roomPeer {
	t.Helper()
	id, err := cryptosuite.GenerateIdentity(cryptosuite.KeyEd25519)
	if err != nil {
		t.Fatal(err)
	}
	secrets, err := room.GenerateKeyPackage(id, 0, time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	p := &roomPeer{name: name, id: id, secrets: secrets, h: h, kps: map[[32]byte]*room.KeyPackage{}}
	p.dial(t, 0)
	if err := p.rc.PublishKeyPackage(tctx(t), secrets.KeyPackage().Blob()); err != nil {
		t.Fatalf("%s: publishing its key package: %v", name, err)
	}
	return p
}

// dial opens a (new) session with the host, with a Pushes of buffer.
func (p *roomPeer) dial(t testing.TB, buffer int) {
	t.Helper()
	p.pushes = NewPushes(buffer)
	p.conn = mustDial(t, pinned(p.h.srv), &Config{
		Identity: p.id, Logger: testLogger(),
		Handlers: map[StreamKind]Handler{KindNotify: p.pushes},
	})
	p.rc = NewRoomClient(p.conn)
}

func (p *roomPeer) pid() cryptosuite.PeerID { return p.id.PeerID() }

// latestKeyPackage fetches and verifies peer's key package for a wrap.
func (p *roomPeer) latestKeyPackage(t testing.TB, peer cryptosuite.PeerID) *room.KeyPackage {
	t.Helper()
	b, err := p.rc.LatestKeyPackage(tctx(t), peer)
	if err != nil {
		t.Fatalf("%s: key package of %s: %v", p.name, peer.Short(), err)
	}
	kp, err := room.VerifyKeyPackage(b, time.Now())
	if err != nil || kp.Owner != peer {
		t.Fatalf("%s: key package of %s: %v", p.name, peer.Short(), err)
	}
	return kp
}

// createRoom makes p the master of a new room.
func (p *roomPeer) createRoom(t testing.TB, name string) store.RoomID {
	t.Helper()
	prop, err := room.NewRoom(room.RoomConfig{Master: p.id, KeyPackage: p.secrets.KeyPackage(), Name: name, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.rc.CreateProposal(tctx(t), prop); err != nil {
		t.Fatalf("%s: creating the room: %v", p.name, err)
	}
	p.st, err = room.NewMemberState(prop.Commit, p.id.Public(), p.pid(), nil)
	if err != nil {
		t.Fatal(err)
	}
	p.room = store.RoomID(prop.Info.Room)
	p.syncKey(t)
	return p.room
}

// memberKeyPackages returns the latest key packages of the head's members
// and of extra peers, for the master's next proposal.
func (p *roomPeer) memberKeyPackages(t testing.TB, extra ...cryptosuite.PeerID) []*room.KeyPackage {
	t.Helper()
	epoch, _ := p.st.Head()
	ms, err := p.st.Members(epoch)
	if err != nil {
		t.Fatal(err)
	}
	var out []*room.KeyPackage
	for _, m := range ms {
		out = append(out, p.latestKeyPackage(t, m.Peer))
	}
	for _, e := range extra {
		out = append(out, p.latestKeyPackage(t, e))
	}
	return out
}

// propose uploads the master's proposal with upload and applies it.
func (p *roomPeer) propose(t testing.TB, prop *room.Proposal, upload func(context.Context, *room.Proposal) error) {
	t.Helper()
	if err := upload(tctx(t), prop); err != nil {
		t.Fatalf("%s: %v: %v", p.name, prop.Info.Operation, err)
	}
	if err := p.st.ApplyProposal(prop, p.secrets); err != nil {
		t.Fatal(err)
	}
	if err := p.rc.Ack(tctx(t), p.room, prop.Info.Epoch); err != nil {
		t.Fatal(err)
	}
}

func (p *roomPeer) invite(t testing.TB, ps ...*roomPeer) {
	t.Helper()
	ids := make([]cryptosuite.PeerID, len(ps))
	for i, q := range ps {
		ids[i] = q.pid()
	}
	prop, err := p.st.Invite(p.id, p.memberKeyPackages(t, ids...), time.Now(), ids...)
	if err != nil {
		t.Fatal(err)
	}
	p.propose(t, prop, p.rc.Invite)
}

func (p *roomPeer) rotate(t testing.TB) {
	t.Helper()
	prop, err := p.st.Rotate(p.id, p.memberKeyPackages(t), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p.propose(t, prop, p.rc.Rotate)
}

func (p *roomPeer) remove(t testing.TB, q *roomPeer) *room.Proposal {
	t.Helper()
	prop, err := p.st.Remove(p.id, p.memberKeyPackages(t), time.Now(), q.pid())
	if err != nil {
		t.Fatal(err)
	}
	p.propose(t, prop, p.rc.Remove)
	return prop
}

// joinRoom starts p's state of room id, whose master is master: the
// master's identity key comes from its key package (its owner must be
// master), the chain from the commit that first lists p, then the key.
func (p *roomPeer) joinRoom(t testing.TB, id store.RoomID, master cryptosuite.PeerID) {
	t.Helper()
	mkp := p.latestKeyPackage(t, master)
	commits := p.allCommits(t, id, 0)
	for i, c := range commits {
		st, err := room.NewMemberState(c, mkp.IdentityKey, p.pid(), nil)
		if errors.Is(err, room.ErrNotMember) {
			continue
		}
		if err != nil {
			t.Fatalf("%s: commit %d: %v", p.name, i+1, err)
		}
		p.st, p.room = st, id
		for _, next := range commits[i+1:] {
			if err := st.ApplyCommit(next); err != nil {
				t.Fatalf("%s: %v", p.name, err)
			}
		}
		p.syncKey(t)
		return
	}
	t.Fatalf("%s: no commit of room %s lists it", p.name, id)
}

// allCommits fetches every commit after the epoch, page by page.
func (p *roomPeer) allCommits(t testing.TB, id store.RoomID, after uint64) [][]byte {
	t.Helper()
	var out [][]byte
	for range 100 {
		cs, head, err := p.rc.FetchCommits(tctx(t), id, after, 1000)
		if err != nil {
			t.Fatalf("%s: fetching commits: %v", p.name, err)
		}
		out = append(out, cs...)
		after += uint64(len(cs))
		if after >= head || len(cs) == 0 {
			return out
		}
	}
	t.Fatal("too many pages of commits")
	return nil
}

// catchUp applies the commits after p's head and opens the head's key.
func (p *roomPeer) catchUp(t testing.TB) {
	t.Helper()
	epoch, _ := p.st.Head()
	for _, c := range p.allCommits(t, p.room, epoch) {
		if err := p.st.ApplyCommit(c); err != nil {
			t.Fatalf("%s: %v", p.name, err)
		}
	}
	p.syncKey(t)
}

// syncKey fetches, opens and acknowledges the head epoch's wrapped key.
func (p *roomPeer) syncKey(t testing.TB) {
	t.Helper()
	epoch, _ := p.st.Head()
	if p.st.HasKey(epoch) {
		return
	}
	w, err := p.rc.FetchWrappedKey(tctx(t), p.room, epoch)
	if err != nil {
		t.Fatalf("%s: wrapped key of epoch %d: %v", p.name, epoch, err)
	}
	if _, err := p.st.OpenWrappedKey(w, p.secrets); err != nil {
		t.Fatalf("%s: %v", p.name, err)
	}
	if err := p.rc.Ack(tctx(t), p.room, epoch); err != nil {
		t.Fatal(err)
	}
}

// seal seals text as a new message with a random id.
func (p *roomPeer) seal(t testing.TB, text string) []byte {
	t.Helper()
	var id [room.MessageIDSize]byte
	rand.Read(id[:])
	return p.sealID(t, text, id)
}

func (p *roomPeer) sealID(t testing.TB, text string, id [room.MessageIDSize]byte) []byte {
	t.Helper()
	b, err := p.st.SealMessage(p.secrets, text, id)
	if err != nil {
		t.Fatalf("%s: %v", p.name, err)
	}
	return b
}

func (p *roomPeer) send(t testing.TB, blob []byte) uint64 {
	t.Helper()
	seq, err := p.rc.Send(tctx(t), p.room, blob)
	if err != nil {
		t.Fatalf("%s: send: %v", p.name, err)
	}
	return seq
}

// signer fetches and verifies the key package a message names.
func (p *roomPeer) signer(t testing.TB, blob []byte) *room.KeyPackage {
	t.Helper()
	_, hash, err := room.MessageSigner(blob)
	if err != nil {
		t.Fatal(err)
	}
	if kp := p.kps[hash]; kp != nil {
		return kp
	}
	b, err := p.rc.FetchKeyPackage(tctx(t), hash)
	if err != nil {
		t.Fatalf("%s: signer's key package: %v", p.name, err)
	}
	kp, err := room.VerifyStoredKeyPackage(b)
	if err != nil || kp.Hash() != hash {
		t.Fatalf("%s: the host served another key package than the one named: %v", p.name, err)
	}
	p.kps[hash] = kp
	return kp
}

// openNew opens a message p learns of after its head (a push).
func (p *roomPeer) openNew(t testing.TB, blob []byte) *room.Plaintext {
	t.Helper()
	pt, err := p.st.OpenMessage(blob, p.signer(t, blob))
	if err != nil {
		t.Fatalf("%s: opening a new message: %v", p.name, err)
	}
	return pt
}

// openHistory opens a message read by cursor.
func (p *roomPeer) openHistory(t testing.TB, blob []byte) *room.Plaintext {
	t.Helper()
	pt, err := p.st.OpenHistory(blob, p.signer(t, blob))
	if err != nil {
		t.Fatalf("%s: opening history: %v", p.name, err)
	}
	return pt
}

// nextPush waits for the first push that want accepts, dropping others.
func (p *roomPeer) nextPush(t testing.TB, what string, want func(Push) bool) Push {
	t.Helper()
	deadline := time.After(hang)
	for {
		select {
		case push := <-p.pushes.C():
			if want(push) {
				return push
			}
		case <-deadline:
			t.Fatalf("%s: no push: %s", p.name, what)
		}
	}
}

// wantRefused fails unless err is a *RoomError that matches target.
func wantRefused(t testing.TB, err error, target error) *RoomError {
	t.Helper()
	var re *RoomError
	if !errors.As(err, &re) || !errors.Is(err, target) {
		t.Fatalf("error %v, want a refusal matching %v", err, target)
	}
	return re
}
