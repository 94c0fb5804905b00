package mongo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"

	"github.com/lanpeer/lanpeer/store"
)

// Defaults for the zero fields of Options.
const (
	// DefaultDatabase is the database used when neither the URI's path
	// nor Options.Database names one.
	DefaultDatabase = "lanpeer"
	// DefaultServerSelectionTimeout bounds how long Open, and each
	// operation while the server is down, waits for a server before
	// failing with store.ErrUnavailable.
	DefaultServerSelectionTimeout = 5 * time.Second
	// DefaultOpTimeout bounds one batch of appends, which runs on the
	// store's own context rather than a caller's.
	DefaultOpTimeout = 30 * time.Second
	// DefaultMaxAppendAttempts bounds how often one message is tried at a
	// new sequence number after another process took the one it tried.
	DefaultMaxAppendAttempts = 1000
)

// Options configures Open. The zero value takes every default.
type Options struct {
	// Database names the database. When empty, the URI's path names it
	// (mongodb://host/NAME), else DefaultDatabase. A URI path and a
	// Database that differ are an error.
	Database string

	// WriteConcern is every write's write concern. Nil means
	// {w: "majority", j: true}: a write is acknowledged once a majority
	// of the replica set has it in its journal (on a standalone server,
	// once it is in the server's journal). FerretDB accepts and ignores
	// write concerns; its SQLite backend commits each write before
	// answering (the tools/ferretdb command runs it with
	// synchronous=FULL, so a commit is on disk).
	WriteConcern *writeconcern.WriteConcern

	// ServerSelectionTimeout bounds how long Open waits for the server,
	// and how long an operation waits for one while the server is down
	// (then it fails with store.ErrUnavailable). Zero means
	// DefaultServerSelectionTimeout.
	ServerSelectionTimeout time.Duration

	// OpTimeout bounds one batch of appends. Zero means DefaultOpTimeout.
	OpTimeout time.Duration

	// MaxAppendAttempts bounds how often one message is tried at a new
	// sequence number after other processes took the one it tried; past
	// it, AppendMessage fails with store.ErrUnavailable (nothing stored).
	// Zero means DefaultMaxAppendAttempts.
	MaxAppendAttempts int
}

// ErrBadOptions is returned by Open for a URI or options it cannot use.
var ErrBadOptions = errors.New("mongo: bad options")

// Store is the MongoDB store. Create it with Open; it is safe for
// concurrent use, and several Stores (in one process or many) may share
// one database.
type Store struct {
	opts   Options
	client *mongo.Client
	db     *mongo.Database
	where  string // the servers, for error messages (no credentials)

	rooms, commits, messages, wrapped, members, keyPackages, directory *mongo.Collection

	closed atomic.Bool
	base   context.Context // cancelled by Close; the append batches run on it
	cancel context.CancelFunc
	wg     sync.WaitGroup // the append goroutines

	lockMu sync.Mutex
	locks  map[store.RoomID]*roomLock

	qMu    sync.Mutex
	queues map[store.RoomID]*appendQueue

	hintMu   sync.Mutex
	seqHints map[string]uint64 // room key/incarnation -> a sequence number known stored
}

var _ store.Store = (*Store)(nil)

// Collection names.
const (
	collRooms       = "rooms"
	collCommits     = "commits"
	collMessages    = "messages"
	collWrappedKeys = "wrapped_keys"
	collMembers     = "member_state"
	collKeyPackages = "key_packages"
	collDirectory   = "directory"
)

// Open connects to the server at uri, checks that it answers within
// Options.ServerSelectionTimeout, creates the collections' indexes (which
// is idempotent) and returns the store. A server that cannot be reached
// is an error wrapping store.ErrUnavailable that names the servers and the
// timeout.
func Open(ctx context.Context, uri string, opts Options) (*Store, error) {
	cs, err := connstring.ParseAndValidate(uri)
	if err != nil {
		return nil, fmt.Errorf("%w: MongoDB URI: %v", ErrBadOptions, err)
	}
	switch {
	case opts.Database == "" && cs.Database != "":
		opts.Database = cs.Database
	case opts.Database == "":
		opts.Database = DefaultDatabase
	case cs.Database != "" && cs.Database != opts.Database:
		return nil, fmt.Errorf("%w: the URI names database %q and the options %q", ErrBadOptions, cs.Database, opts.Database)
	}
	if opts.ServerSelectionTimeout < 0 || opts.OpTimeout < 0 || opts.MaxAppendAttempts < 0 {
		return nil, fmt.Errorf("%w: negative timeout or attempt count", ErrBadOptions)
	}
	if opts.ServerSelectionTimeout == 0 {
		opts.ServerSelectionTimeout = DefaultServerSelectionTimeout
	}
	if opts.OpTimeout == 0 {
		opts.OpTimeout = DefaultOpTimeout
	}
	if opts.MaxAppendAttempts == 0 {
		opts.MaxAppendAttempts = DefaultMaxAppendAttempts
	}
	if opts.WriteConcern == nil {
		journal := true
		opts.WriteConcern = &writeconcern.WriteConcern{W: "majority", Journal: &journal}
	}

	where := strings.Join(cs.Hosts, ",")
	if where == "" {
		where = strings.Join(cs.RawHosts, ",")
	}
	client, err := mongo.Connect(options.Client().ApplyURI(uri).
		SetServerSelectionTimeout(opts.ServerSelectionTimeout).
		SetConnectTimeout(opts.ServerSelectionTimeout).
		SetWriteConcern(opts.WriteConcern))
	if err != nil {
		return nil, fmt.Errorf("%w: MongoDB client for %s: %v", ErrBadOptions, where, err)
	}
	s := &Store{
		opts:     opts,
		client:   client,
		db:       client.Database(opts.Database),
		where:    where,
		locks:    make(map[store.RoomID]*roomLock),
		queues:   make(map[store.RoomID]*appendQueue),
		seqHints: make(map[string]uint64),
	}
	s.base, s.cancel = context.WithCancel(context.Background())
	s.rooms = s.db.Collection(collRooms)
	s.commits = s.db.Collection(collCommits)
	s.messages = s.db.Collection(collMessages)
	s.wrapped = s.db.Collection(collWrappedKeys)
	s.members = s.db.Collection(collMembers)
	s.keyPackages = s.db.Collection(collKeyPackages)
	s.directory = s.db.Collection(collDirectory)

	pingCtx, cancel := context.WithTimeout(ctx, opts.ServerSelectionTimeout)
	defer cancel()
	if err := client.Ping(pingCtx, nil); err != nil {
		_ = s.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: no MongoDB server answered at %s within %v (is it running, and is the URI right?): %v",
			store.ErrUnavailable, where, opts.ServerSelectionTimeout, err)
	}
	if err := s.createIndexes(pingCtx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// createIndexes creates every index the store relies on. The unique ones
// decide every race between writers (see the package documentation); the
// others keep MongoDB's queries off full scans.
func (s *Store) createIndexes(ctx context.Context) error {
	unique := options.Index().SetUnique(true)
	for _, ix := range []struct {
		coll   *mongo.Collection
		models []mongo.IndexModel
	}{
		{s.messages, []mongo.IndexModel{
			{Keys: bson.D{{Key: "rid", Value: 1}, {Key: "inc", Value: 1}, {Key: "mid", Value: 1}}, Options: unique},
			{Keys: bson.D{{Key: "kp", Value: 1}}},
		}},
		{s.commits, []mongo.IndexModel{
			{Keys: bson.D{{Key: "rid", Value: 1}, {Key: "inc", Value: 1}}},
			{Keys: bson.D{{Key: "members.p", Value: 1}}},
			{Keys: bson.D{{Key: "members.kp", Value: 1}}},
		}},
		{s.rooms, []mongo.IndexModel{
			{Keys: bson.D{{Key: "members.p", Value: 1}}},
			{Keys: bson.D{{Key: "members.kp", Value: 1}}},
		}},
		{s.wrapped, []mongo.IndexModel{{Keys: bson.D{{Key: "rid", Value: 1}, {Key: "inc", Value: 1}}}}},
		{s.members, []mongo.IndexModel{{Keys: bson.D{{Key: "rid", Value: 1}, {Key: "inc", Value: 1}, {Key: "p", Value: 1}}}}},
		{s.keyPackages, []mongo.IndexModel{
			{Keys: bson.D{{Key: "owner", Value: 1}, {Key: "expires", Value: 1}}},
			{Keys: bson.D{{Key: "expires", Value: 1}}},
		}},
		{s.directory, []mongo.IndexModel{
			{Keys: bson.D{{Key: "peer", Value: 1}, {Key: "issued", Value: -1}}},
			{Keys: bson.D{{Key: "expires", Value: 1}}},
		}},
	} {
		// One at a time: FerretDB v1.24.2 drops the connection when one
		// createIndexes command names two indexes that already exist.
		for _, m := range ix.models {
			if _, err := ix.coll.Indexes().CreateOne(ctx, m); err != nil {
				return s.fail(ctx, "creating the indexes of "+ix.coll.Name(), err)
			}
		}
	}
	return nil
}

// Database returns the name of the store's database.
func (s *Store) Database() string { return s.opts.Database }

// Close waits for the appends in flight, then disconnects. It is
// idempotent; afterwards every other method returns store.ErrClosed.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.cancel()
	s.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.ServerSelectionTimeout)
	defer cancel()
	if err := s.client.Disconnect(ctx); err != nil {
		return fmt.Errorf("mongo: disconnecting from %s: %w", s.where, err)
	}
	return nil
}

// enter is every method's first step.
func (s *Store) enter(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return store.ErrClosed
	}
	return nil
}

// UnavailableError reports a failed call to the server: it could not be
// reached, the connection broke, or the server refused the operation.
// It matches store.ErrUnavailable with errors.Is, and unwraps to the
// driver's error. Whether a write happened is unknown; every write is
// idempotent, so the caller may retry. The driver reconnects by itself:
// once the server is back, calls succeed again on the same Store.
type UnavailableError struct {
	Op    string // what the store was doing
	Where string // the servers
	Err   error  // the driver's error
}

// Error names the operation, the servers and the driver's error.
func (e *UnavailableError) Error() string {
	return fmt.Sprintf("%v: %s at %s: %v", store.ErrUnavailable, e.Op, e.Where, e.Err)
}

// Is reports whether target is store.ErrUnavailable.
func (e *UnavailableError) Is(target error) bool { return target == store.ErrUnavailable }

// Unwrap returns the driver's error.
func (e *UnavailableError) Unwrap() error { return e.Err }

// fail turns a driver error into the store's: store.ErrClosed after
// Close, the context's error when that is why it failed, else an
// *UnavailableError.
func (s *Store) fail(ctx context.Context, op string, err error) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
		return ctxErr
	}
	return &UnavailableError{Op: op, Where: s.where, Err: err}
}

// isDuplicateKey reports whether a write error's code is a duplicate key.
// Which key is never read from the error: callers look the record up.
func isDuplicateKey(code int) bool { return code == 11000 || code == 11001 || code == 12582 }

// newIncarnation returns a fresh random incarnation: 16 hex characters
// that tell a room apart from an earlier room with the same id.
func newIncarnation() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("mongo: random incarnation: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// Keys. Every record is found by its _id, a string, so that point reads
// are index lookups on MongoDB and FerretDB alike (FerretDB's SQLite
// backend pushes down only a filter on a string _id; anything else is a
// scan). Numbers are 16 hex digits, so that string order is number order.

func roomKey(id store.RoomID) string { return id.String() }

func peerHex(p store.PeerID) string { return hex.EncodeToString(p[:]) }

func num(n uint64) string { return fmt.Sprintf("%016x", n) }

// roomPrefix starts the key of everything that belongs to one incarnation
// of a room.
func roomPrefix(id store.RoomID, inc string) string { return roomKey(id) + "/" + inc + "/" }

func commitKey(id store.RoomID, inc string, epoch uint64) string {
	return roomPrefix(id, inc) + num(epoch)
}

func messageKey(id store.RoomID, inc string, seq uint64) string {
	return roomPrefix(id, inc) + num(seq)
}

func wrappedKeyKey(id store.RoomID, inc string, epoch uint64, member store.PeerID) string {
	return roomPrefix(id, inc) + num(epoch) + "/" + peerHex(member)
}

// memberKey starts the keys of one membership: a peer from the epoch it
// joined (since) until it is removed. A peer removed and invited again is
// a new membership, with nothing of the old one.
func memberKey(id store.RoomID, inc string, peer store.PeerID, since uint64) string {
	return roomPrefix(id, inc) + peerHex(peer) + "/" + num(since)
}

// i64 and u64 store uint64s in BSON's int64, bit for bit.
func i64(n uint64) int64 { return int64(n) }
func u64(n int64) uint64 { return uint64(n) }

func notFound(format string, args ...any) error {
	return fmt.Errorf("%w: %s", store.ErrNotFound, fmt.Sprintf(format, args...))
}

func conflict(format string, args ...any) error {
	return fmt.Errorf("%w: %s", store.ErrConflict, fmt.Sprintf(format, args...))
}

func stale(format string, args ...any) error {
	return fmt.Errorf("%w: %s", store.ErrStale, fmt.Sprintf(format, args...))
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", store.ErrInvalid, fmt.Sprintf(format, args...))
}

func full(format string, args ...any) error {
	return fmt.Errorf("%w: %s", store.ErrFull, fmt.Sprintf(format, args...))
}

// roomLock serializes the writes to one room that this Store makes
// (append batches, commits, deletion), so that within one process an
// append never races a commit. Across processes the unique keys decide.
type roomLock struct {
	mu   sync.Mutex
	refs int // guarded by Store.lockMu
}

// lockRoom locks id for this Store and returns the unlock function.
func (s *Store) lockRoom(id store.RoomID) func() {
	s.lockMu.Lock()
	l := s.locks[id]
	if l == nil {
		l = &roomLock{}
		s.locks[id] = l
	}
	l.refs++
	s.lockMu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		s.lockMu.Lock()
		if l.refs--; l.refs == 0 {
			delete(s.locks, id)
		}
		s.lockMu.Unlock()
	}
}
