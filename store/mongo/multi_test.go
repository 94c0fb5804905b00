package mongo

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/lanpeer/lanpeer/store"
)

// TestTwoStoresOneRoom: two Stores (as two lanpeer processes would have)
// on one database append to one room at once, each message sent through
// both at the same time as a retry would be. Every message is stored once,
// both answers agree, and the sequence is dense.
func TestTwoStoresOneRoom(t *testing.T) {
	t.Parallel() // each test has a database, or a server, of its own
	name := "lanpeer_test_" + randomHex(6)
	a := openTest(t, testURI, Options{Database: name})
	defer a.Close()
	b, err := Open(t.Context(), testURI, Options{Database: name})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := t.Context()
	const senders, each = 4, 30
	r, _ := testRoom(t, a, senders)

	type result struct {
		m   store.Message
		err error
	}
	results := make([][][2]result, senders)
	var wg sync.WaitGroup
	for w := range senders {
		results[w] = make([][2]result, each)
		wg.Go(func() {
			for i := range each {
				var pair sync.WaitGroup
				for k, s := range []*Store{a, b} {
					pair.Go(func() {
						m, err := s.AppendMessage(ctx, testMessage(r.ID, w+1, i))
						results[w][i][k] = result{m, err}
					})
				}
				pair.Wait()
			}
		})
	}
	wg.Wait()

	bySeq := make(map[uint64]store.Message)
	for w := range senders {
		for i, pair := range results[w] {
			for k, res := range pair {
				if res.err != nil {
					t.Fatalf("sender %d message %d through store %d: %v", w, i, k, res.err)
				}
			}
			if pair[0].m.Seq != pair[1].m.Seq || pair[0].m.ID != pair[1].m.ID {
				t.Fatalf("sender %d message %d: the two stores answered seq %d and %d", w, i, pair[0].m.Seq, pair[1].m.Seq)
			}
			if prev, dup := bySeq[pair[0].m.Seq]; dup {
				t.Fatalf("seq %d given to %s and %s", pair[0].m.Seq, prev.ID, pair[0].m.ID)
			}
			bySeq[pair[0].m.Seq] = pair[0].m
		}
	}
	for k, s := range []*Store{a, b} {
		msgs := readEverything(t, s, r.ID)
		if len(msgs) != senders*each {
			t.Fatalf("store %d reads %d messages, want %d", k, len(msgs), senders*each)
		}
		for i, m := range msgs {
			if m.Seq != uint64(i+1) || bySeq[m.Seq].ID != m.ID {
				t.Fatalf("store %d: message %d has seq %d, id %s; want seq %d, id %s", k, i, m.Seq, m.ID, i+1, bySeq[uint64(i+1)].ID)
			}
		}
		sp, err := s.MessageSpan(ctx, r.ID)
		if err != nil || sp != (store.Span{First: 1, Last: senders * each}) {
			t.Errorf("store %d: MessageSpan = %+v, %v", k, sp, err)
		}
	}
}

// TestTwoStoresCommit: commits from one epoch through two Stores at once:
// exactly one wins, the other gets ErrConflict, and both Stores then see
// the winner.
func TestTwoStoresCommit(t *testing.T) {
	t.Parallel() // each test has a database, or a server, of its own
	name := "lanpeer_test_" + randomHex(6)
	a := openTest(t, testURI, Options{Database: name})
	defer a.Close()
	b, err := Open(t.Context(), testURI, Options{Database: name})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := t.Context()
	r, members := testRoom(t, a, 2)
	for from := uint64(1); from <= 10; from++ {
		var errs [2]error
		var wg sync.WaitGroup
		commits := [2]store.Commit{}
		for k, s := range []*Store{a, b} {
			commits[k] = store.Commit{Room: r.ID, Epoch: from + 1, Hash: [32]byte{byte(from), byte(k), 1}, Blob: []byte(fmt.Sprintf("commit %d %d", from, k))}
			wg.Go(func() { _, errs[k] = s.ApplyCommit(ctx, r.ID, from, commits[k], members) })
		}
		wg.Wait()
		winner := -1
		for k, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("epoch %d: both commits won", from+1)
			case err == nil:
				winner = k
			case !errors.Is(err, store.ErrConflict):
				t.Fatalf("epoch %d: the losing commit got %v, want ErrConflict", from+1, err)
			}
		}
		if winner < 0 {
			t.Fatalf("epoch %d: no commit won", from+1)
		}
		for k, s := range []*Store{a, b} {
			got, err := s.GetRoom(ctx, r.ID)
			if err != nil || got.Epoch != from+1 || got.Head != commits[winner].Hash {
				t.Fatalf("store %d after epoch %d: room at epoch %d (%v), not the winner's", k, from+1, got.Epoch, err)
			}
		}
	}
}
