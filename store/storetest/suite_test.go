package storetest_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lanpeer/lanpeer/store"
	"github.com/lanpeer/lanpeer/store/memory"
	"github.com/lanpeer/lanpeer/store/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// mutantEnv names the mutant TestMutant runs the suite against.
const mutantEnv = "LANPEER_STORETEST_MUTANT"

// Each mutant wraps a correct memory store and breaks one rule the way a
// backend could get it wrong; want is the subtest that must catch it.
var mutants = []struct {
	name string
	want string
	wrap func(store.Store) store.Store
}{
	{"silent gap", "Message/History", func(s store.Store) store.Store { return silentGap{s} }},
	{"retry stored twice", "Message/Idempotent", func(s store.Store) store.Store { return retryTwice{s} }},
	{"stale accepted", "Message/Epoch", func(s store.Store) store.Store { return staleAccepted{s} }},
	{"shared blobs", "Message/Copies", func(s store.Store) store.Store { return &sharedBlobs{Store: s} }},
	{"records never expire", "Directory/Expiry", func(s store.Store) store.Store { return neverExpire{s} }},
	{"rooms unordered", "Room/List", func(s store.Store) store.Store { return unordered{s} }},
	{"context ignored", "Context", func(s store.Store) store.Store { return ignoreContext{s} }},
	{"close ignored", "Close", func(s store.Store) store.Store { return closeIgnored{s} }},
}

// TestMutant runs the suite against the mutant named in the environment;
// without one it has nothing to do.
func TestMutant(t *testing.T) {
	name := os.Getenv(mutantEnv)
	if name == "" {
		t.Skip("run by TestSuiteCatchesMutants")
	}
	for _, m := range mutants {
		if m.name == name {
			storetest.Run(t, func(t *testing.T) store.Store {
				s, err := memory.New(memory.Options{HistoryPerRoom: 5})
				if err != nil {
					t.Fatal(err)
				}
				return m.wrap(s)
			})
			return
		}
	}
	t.Fatalf("no mutant %q", name)
}

// TestSuiteCatchesMutants shows that the suite fails a store that breaks a
// rule: each mutant runs in a child test process, which must fail in the
// subtest that holds the rule.
func TestSuiteCatchesMutants(t *testing.T) {
	for _, m := range mutants {
		t.Run(m.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute) // a hang deadline
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestMutant$", "-test.v")
			cmd.Env = append(os.Environ(), mutantEnv+"="+m.name)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("the suite passed a store whose %s (err %v)", m.name, err)
			}
			if want := "--- FAIL: TestMutant/" + m.want + " "; !strings.Contains(string(out), want) {
				t.Errorf("the suite did not fail %s for a store whose %s; output:\n%s", m.want, m.name, out)
			}
		})
	}
}

// silentGap hides a trimmed history: it reads on from the oldest kept
// message as if nothing were missing.
type silentGap struct{ store.Store }

func (s silentGap) ReadMessages(ctx context.Context, room store.RoomID, after uint64, limit int) ([]store.Message, error) {
	msgs, err := s.Store.ReadMessages(ctx, room, after, limit)
	var hte *store.HistoryTrimmedError
	if errors.As(err, &hte) {
		return s.Store.ReadMessages(ctx, room, hte.Oldest-1, limit)
	}
	return msgs, err
}

func (s silentGap) HistoryPerRoom() int { return s.Store.(store.HistoryLimiter).HistoryPerRoom() }

// retryTwice keys idempotency on the blob too, so a re-encrypted retry is
// stored as a new message.
type retryTwice struct{ store.Store }

func (s retryTwice) AppendMessage(ctx context.Context, m store.Message) (store.Message, error) {
	m.ID[15] ^= m.Blob[0]
	return s.Store.AppendMessage(ctx, m)
}

// staleAccepted moves a message under an old epoch to the current one.
type staleAccepted struct{ store.Store }

func (s staleAccepted) AppendMessage(ctx context.Context, m store.Message) (store.Message, error) {
	got, err := s.Store.AppendMessage(ctx, m)
	if errors.Is(err, store.ErrStale) {
		r, rerr := s.GetRoom(ctx, m.Room)
		if rerr != nil {
			return got, rerr
		}
		m.Epoch = r.Epoch
		return s.Store.AppendMessage(ctx, m)
	}
	return got, err
}

// sharedBlobs hands out the same blob to every reader of a message.
type sharedBlobs struct {
	store.Store
	mu    sync.Mutex
	blobs map[store.MessageID][]byte
}

func (s *sharedBlobs) ReadMessages(ctx context.Context, room store.RoomID, after uint64, limit int) ([]store.Message, error) {
	msgs, err := s.Store.ReadMessages(ctx, room, after, limit)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.blobs == nil {
		s.blobs = make(map[store.MessageID][]byte)
	}
	for i := range msgs {
		if b, ok := s.blobs[msgs[i].ID]; ok {
			msgs[i].Blob = b
		} else {
			s.blobs[msgs[i].ID] = msgs[i].Blob
		}
	}
	return msgs, err
}

func (s *sharedBlobs) AppendMessage(ctx context.Context, m store.Message) (store.Message, error) {
	got, err := s.Store.AppendMessage(ctx, m)
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.blobs[got.ID]; ok {
		got.Blob = b
	}
	return got, err
}

// neverExpire serves directory records whatever the time.
type neverExpire struct{ store.Store }

func (s neverExpire) GetDirectoryRecord(ctx context.Context, p store.PeerID, _ time.Time) (store.DirectoryRecord, error) {
	return s.Store.GetDirectoryRecord(ctx, p, time.Time{})
}

// unordered lists rooms newest id first.
type unordered struct{ store.Store }

func (s unordered) ListRooms(ctx context.Context, p store.PeerID, after store.RoomID, limit int) ([]store.Room, error) {
	rooms, err := s.Store.ListRooms(ctx, p, after, limit)
	for i, j := 0, len(rooms)-1; i < j; i, j = i+1, j-1 {
		rooms[i], rooms[j] = rooms[j], rooms[i]
	}
	return rooms, err
}

// ignoreContext writes although the caller gave up.
type ignoreContext struct{ store.Store }

func (s ignoreContext) CreateRoom(_ context.Context, r store.Room, c store.Commit, m []store.Member) error {
	return s.Store.CreateRoom(context.Background(), r, c, m)
}

// closeIgnored keeps serving after Close.
type closeIgnored struct{ store.Store }

func (closeIgnored) Close() error { return nil }
