// Package storetest is the conformance suite for store.Store: every rule of
// the interface's documentation as a test, run the same way against every
// backend (STYLE.md §2, store).
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store {
//			s, err := memory.New(memory.Options{})
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s
//		})
//	}
//
// Run calls newStore once per subtest and expects an empty store each time;
// it closes the store when the subtest ends. Subtests run one after another.
// A store that implements store.HistoryLimiter is checked to trim as it
// says (its bound should be at most a few tens of thousands, or that check
// is skipped); one that does not is checked to keep every message.
//
// The suite passes explicit times: nothing depends on the wall clock, and
// hang deadlines are the only timing in it.
package storetest

import (
	"testing"

	"github.com/lanpeer/lanpeer/store"
)

// Run runs the conformance suite against the stores newStore makes.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Helper()
	for _, tc := range suite {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

type test struct {
	name string
	fn   func(t *testing.T, s store.Store)
}

// suite lists every test in the order they run.
var suite = []test{
	{"KeyPackage/PutGet", testKeyPackagePutGet},
	{"KeyPackage/Idempotent", testKeyPackageIdempotent},
	{"KeyPackage/Invalid", testKeyPackageInvalid},
	{"KeyPackage/Latest", testKeyPackageLatest},
	{"KeyPackage/PerOwnerBound", testKeyPackagePerOwnerBound},
	{"KeyPackage/Sweep", testKeyPackageSweep},
	{"KeyPackage/Copies", testKeyPackageCopies},

	{"Room/CreateGet", testRoomCreateGet},
	{"Room/CreateIdempotent", testRoomCreateIdempotent},
	{"Room/CreateInvalid", testRoomCreateInvalid},
	{"Room/CreateAtEpochZero", testRoomCreateAtEpochZero},
	{"Room/ApplyCommit", testRoomApplyCommit},
	{"Room/ApplyCommitConflict", testRoomApplyCommitConflict},
	{"Room/ApplyCommitInvalid", testRoomApplyCommitInvalid},
	{"Room/ApplyCommitConcurrent", testRoomApplyCommitConcurrent},
	{"Room/AckEpoch", testRoomAckEpoch},
	{"Room/Leave", testRoomLeave},
	{"Room/List", testRoomList},
	{"Room/ListCommits", testRoomListCommits},
	{"Room/Delete", testRoomDelete},
	{"Room/Copies", testRoomCopies},

	{"WrappedKey/PutGet", testWrappedKeyPutGet},
	{"WrappedKey/Invalid", testWrappedKeyInvalid},

	{"Message/AppendRead", testMessageAppendRead},
	{"Message/RoomsIndependent", testMessageRoomsIndependent},
	{"Message/Idempotent", testMessageIdempotent},
	{"Message/Epoch", testMessageEpoch},
	{"Message/Invalid", testMessageInvalid},
	{"Message/ConcurrentAppenders", testMessageConcurrentAppenders},
	{"Message/ConcurrentRetries", testMessageConcurrentRetries},
	{"Message/ConcurrentSameID", testMessageConcurrentSameID},
	{"Message/History", testMessageHistory},
	{"Message/Copies", testMessageCopies},

	{"Directory/PutGet", testDirectoryPutGet},
	{"Directory/Newer", testDirectoryNewer},
	{"Directory/Invalid", testDirectoryInvalid},
	{"Directory/Expiry", testDirectoryExpiry},
	{"Directory/Copies", testDirectoryCopies},

	{"Context", testContext},
	{"Close", testClose},
}
