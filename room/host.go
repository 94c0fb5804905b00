package room

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/lanpeer/lanpeer/canon"
	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/store"
)

// Errors of the host's rules (Host), beside the object errors of
// errors.go that the host returns too (ErrNotMember, ErrNotMaster,
// ErrMasterCannotLeave, ErrMissingKeyPackage, ErrBadSignature, ...).
// docs/PROTOCOL.md §18.4 maps each to a wire reason.
var (
	// ErrNoRoom is a room this host does not hold.
	ErrNoRoom = errors.New("room: no such room on this host")
	// ErrLeft is a member that asked to leave: the host applied the
	// request at once, so the member reads and posts no more, though it
	// stays in the member list until the master's remove commit.
	ErrLeft = errors.New("room: the member has left the room")
	// ErrNotOwner is an object that names another peer than the one
	// presenting it: a key package of another owner, a message whose
	// sender is not the session's peer.
	ErrNotOwner = errors.New("room: the object belongs to another peer than the session's")
	// ErrOldEpoch is a new message under an epoch older than the room's:
	// the sender fetches the commits and its new wrapped key and sends the
	// message again, sealed under the new epoch with the same message id.
	// It comes as an *EpochError carrying the room's epoch.
	ErrOldEpoch = errors.New("room: the room has a newer epoch; fetch its key and send again with the same message id")
	// ErrCommitConflict is a commit that does not start the epoch after
	// the room's head on the head's hash: another commit came first (or
	// the master's state is behind). A create commit for a room id the
	// host holds under another create is one too. It comes as an
	// *EpochError carrying the room's epoch when the room exists.
	ErrCommitConflict = errors.New("room: the commit does not follow the room's latest commit")
	// ErrMessageIDTaken is a message id another sender already used in
	// the room (a retry by the same sender gets its first send's answer).
	ErrMessageIDTaken = errors.New("room: another sender used this message id in the room")
	// ErrNoWrappedKey is an epoch for which the host holds no wrapped key
	// for the member asking: the master has not uploaded it yet, or the
	// member was not in that epoch.
	ErrNoWrappedKey = errors.New("room: no wrapped key for this member at that epoch")
	// ErrNotFound is a key package or leave request the host does not
	// hold.
	ErrNotFound = errors.New("room: not found on this host")
	// ErrBadRequest is a request that breaks a rule of the host that no
	// object error names: a cursor past the last message, an epoch the
	// room has not reached.
	ErrBadRequest = errors.New("room: request breaks a rule of the host")
)

// EpochError is ErrOldEpoch or ErrCommitConflict with the room's epoch, so
// that the client knows how far behind it is.
type EpochError struct {
	Err     error  // ErrOldEpoch or ErrCommitConflict
	Epoch   uint64 // the epoch of the message or commit refused (0 if unknown)
	Current uint64 // the room's epoch when it was refused
}

func (e *EpochError) Error() string {
	return fmt.Sprintf("%v (room at epoch %d, refused epoch %d)", e.Err, e.Current, e.Epoch)
}

// Unwrap returns Err.
func (e *EpochError) Unwrap() error { return e.Err }

// HostConfig configures a Host.
type HostConfig struct {
	// Store holds the rooms. Required.
	Store store.Store
	// Limits bound the rooms; nil means defaults. MaxMembers may not
	// exceed store.MaxMembers.
	Limits *Limits
	// Now is the host's clock (default time.Now): key package expiry,
	// stored times.
	Now func() time.Time
	// SkipMessageSignatures stores messages without verifying their
	// Ed25519 signatures (every other rule of Send still holds: the
	// caller is a member, posts as itself, under its key package of the
	// epoch). Members verify every message they read and refuse one that
	// does not verify, so this only lets a member store messages that
	// readers skip, as it can with validly signed junk (docs/SECURITY.md).
	// The default, false, verifies: defence in depth.
	SkipMessageSignatures bool
}

// Host applies the host-side rules of rooms (DESIGN.md §5,
// docs/PROTOCOL.md §18) over a store.Store: who may do what, and which
// signed objects the host accepts. The host verifies every object it
// stores (signatures, chain, membership against the stored head) but
// cannot read messages or room keys; members verify everything again
// with their own state (MemberState) and never believe the host alone.
//
// Every method takes the caller: the peer the session authenticated
// (its identity key where the method verifies the caller's signature, its
// peer ID otherwise). Every refusal is a typed error (matching one of
// this package's errors or store's with errors.Is), never an empty
// result. A Host is safe for concurrent use.
type Host struct {
	st       store.Store
	lim      Limits
	now      func() time.Time
	skipSigs bool // HostConfig.SkipMessageSignatures

	mu      sync.Mutex
	kps     map[[HashSize]byte]*KeyPackage // verified key packages; bounded by maxCachedKeyPackages
	commits map[commitKey]*Commit          // verified commits; bounded by maxCachedCommits
}

type commitKey struct {
	room  store.RoomID
	epoch uint64
	hash  [HashSize]byte
}

// Cache bounds: past them the caches forget an arbitrary entry. They save
// re-verifying signatures, never decide anything.
const (
	maxCachedKeyPackages = 4096
	maxCachedCommits     = 256
)

// NewHost returns a Host over cfg.Store.
func NewHost(cfg HostConfig) (*Host, error) {
	if cfg.Store == nil {
		return nil, errors.New("room: NewHost without a store")
	}
	lim, err := cfg.Limits.resolve()
	if err != nil {
		return nil, err
	}
	if lim.MaxMembers > store.MaxMembers || MaxCommitBlob(lim.MaxMembers) > store.MaxCommitSize {
		return nil, fmt.Errorf("room: a host's MaxMembers may not exceed the store's %d", store.MaxMembers)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Host{
		st: cfg.Store, lim: lim, now: now, skipSigs: cfg.SkipMessageSignatures,
		kps:     make(map[[HashSize]byte]*KeyPackage),
		commits: make(map[commitKey]*Commit),
	}, nil
}

// Limits returns the host's resolved limits.
func (h *Host) Limits() Limits { return h.lim }

// Store returns the host's store.
func (h *Host) Store() store.Store { return h.st }

// roomErr turns the store's not-found for a room into ErrNoRoom and
// passes every other error on.
func roomErr(err error, id store.RoomID) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %s", ErrNoRoom, id)
	}
	return err
}

// member returns the room and caller's membership, refusing a caller that
// is not a member (ErrNotMember) or has left (ErrLeft).
func (h *Host) member(ctx context.Context, id store.RoomID, caller cryptosuite.PeerID) (store.Room, store.Member, error) {
	r, err := h.st.GetRoom(ctx, id)
	if err != nil {
		return store.Room{}, store.Member{}, roomErr(err, id)
	}
	m, err := h.st.GetMember(ctx, id, caller)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return r, m, fmt.Errorf("%w: %s in room %s", ErrNotMember, caller.Short(), id)
	case err != nil:
		return r, m, roomErr(err, id)
	case m.Leave != nil:
		return r, m, fmt.Errorf("%w: %s left room %s", ErrLeft, caller.Short(), id)
	}
	return r, m, nil
}

// master returns the room, refusing a caller that is not its master
// (ErrNotMember for a non-member, ErrNotMaster for a member).
func (h *Host) master(ctx context.Context, id store.RoomID, caller cryptosuite.PeerID) (store.Room, error) {
	r, err := h.st.GetRoom(ctx, id)
	if err != nil {
		return r, roomErr(err, id)
	}
	if r.Master == caller {
		return r, nil
	}
	if _, err := h.st.GetMember(ctx, id, caller); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return r, fmt.Errorf("%w: %s in room %s", ErrNotMember, caller.Short(), id)
		}
		return r, roomErr(err, id)
	}
	return r, fmt.Errorf("%w: %s is not the master of room %s", ErrNotMaster, caller.Short(), id)
}

// keyPackage returns the verified key package with hash, from the cache
// or the store (verified without its validity period: it may be listed by
// an old commit). ErrNotFound if the host does not hold it.
func (h *Host) keyPackage(ctx context.Context, hash [HashSize]byte) (*KeyPackage, error) {
	h.mu.Lock()
	kp := h.kps[hash]
	h.mu.Unlock()
	if kp != nil {
		return kp, nil
	}
	rec, err := h.st.GetKeyPackage(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: key package %x", ErrNotFound, hash[:6])
	}
	if err != nil {
		return nil, err
	}
	kp, err = VerifyStoredKeyPackage(rec.Blob)
	if err != nil {
		// The host verified it before storing it; a store that hands back
		// something else is broken.
		return nil, fmt.Errorf("room: stored key package %x does not verify: %w", hash[:6], err)
	}
	h.cacheKeyPackage(kp)
	return kp, nil
}

func (h *Host) cacheKeyPackage(kp *KeyPackage) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.kps) >= maxCachedKeyPackages {
		for k := range h.kps {
			delete(h.kps, k)
			break
		}
	}
	h.kps[kp.Hash()] = kp
}

// commit returns the verified commit of epoch, signed by master.
func (h *Host) commit(ctx context.Context, id store.RoomID, epoch uint64, master *cryptosuite.PublicKey) (*Commit, error) {
	rec, err := h.st.GetCommit(ctx, id, epoch)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: room %s has no epoch %d", ErrUnknownEpoch, id, epoch)
	}
	if err != nil {
		return nil, roomErr(err, id)
	}
	key := commitKey{id, epoch, rec.Hash}
	h.mu.Lock()
	c := h.commits[key]
	h.mu.Unlock()
	if c != nil {
		return c, nil
	}
	c, err = VerifyCommit(rec.Blob, master, &h.lim)
	if err != nil {
		return nil, fmt.Errorf("room: stored commit of epoch %d does not verify: %w", epoch, err)
	}
	h.mu.Lock()
	if len(h.commits) >= maxCachedCommits {
		for k := range h.commits {
			delete(h.commits, k)
			break
		}
	}
	h.commits[key] = c
	h.mu.Unlock()
	return c, nil
}

// PublishKeyPackage verifies a key package the caller publishes (valid
// now, signed by its owner, who must be the caller: ErrNotOwner) and
// stores it. Publishing it again succeeds.
func (h *Host) PublishKeyPackage(ctx context.Context, caller *cryptosuite.PublicKey, blob []byte) (*KeyPackage, error) {
	now := h.now()
	kp, err := VerifyKeyPackage(blob, now)
	if err != nil {
		return nil, err
	}
	if kp.Owner != caller.PeerID() {
		return nil, fmt.Errorf("%w: key package of %s published by %s", ErrNotOwner, kp.Owner.Short(), caller.PeerID().Short())
	}
	rec := store.KeyPackage{Hash: kp.Hash(), Owner: kp.Owner, Blob: kp.Blob(), Expires: kp.Expires}
	if err := h.st.PutKeyPackage(ctx, rec, now); err != nil {
		if errors.Is(err, store.ErrStale) {
			return nil, fmt.Errorf("%w: %w", ErrKeyPackageExpired, err)
		}
		return nil, err
	}
	h.cacheKeyPackage(kp)
	return kp, nil
}

// checkMemberKeyPackages checks that every member of c has its key
// package on the host, owned by it; a key package new to the member list
// (an invitee's, or a member's fresher one) must be valid now. prev is
// the member list before c (nil for create).
func (h *Host) checkMemberKeyPackages(ctx context.Context, c *Commit, prev map[cryptosuite.PeerID][HashSize]byte) error {
	now := h.now()
	for _, m := range c.Members {
		kp, err := h.keyPackage(ctx, m.KeyPackage)
		if errors.Is(err, ErrNotFound) {
			return fmt.Errorf("%w: %s has no key package %x on this host (it must dial this host once to publish one)",
				ErrMissingKeyPackage, m.Peer.Short(), m.KeyPackage[:6])
		}
		if err != nil {
			return err
		}
		if kp.Owner != m.Peer {
			return fmt.Errorf("%w: the commit lists a key package of %s for %s", ErrWrongKeyPackage, kp.Owner.Short(), m.Peer.Short())
		}
		if old, ok := prev[m.Peer]; !ok || old != m.KeyPackage {
			if err := kp.ValidAt(now); err != nil {
				return err
			}
		}
	}
	return nil
}

// storeMembers turns a commit's member list into the store's, the master
// with the master role.
func storeMembers(c *Commit) []store.Member {
	out := make([]store.Member, len(c.Members))
	for i, m := range c.Members {
		role := store.RoleMember
		if m.Peer == c.Master {
			role = store.RoleMaster
		}
		out[i] = store.Member{Peer: m.Peer, Role: role, KeyPackageHash: m.KeyPackage}
	}
	return out
}

// CreateRoom verifies a create commit signed by the caller, who becomes
// the room's master, checks that the host holds every listed member's key
// package (ErrMissingKeyPackage tells the peer to dial this host once),
// and stores the room at epoch 1. Creating it again with the same commit
// succeeds; another room under the same id is ErrCommitConflict. The
// wrapped keys follow with UploadWrappedKey.
func (h *Host) CreateRoom(ctx context.Context, caller *cryptosuite.PublicKey, commitBlob []byte) (*Commit, error) {
	c, err := VerifyCommit(commitBlob, caller, &h.lim)
	if err != nil {
		return nil, err
	}
	if c.Operation != OpCreate {
		return nil, fmt.Errorf("%w: a %v commit cannot create a room", ErrBadCommit, c.Operation)
	}
	if err := h.checkMemberKeyPackages(ctx, c, nil); err != nil {
		return nil, err
	}
	id := store.RoomID(c.Room)
	r := store.Room{ID: id, Master: c.Master, Suite: uint16(c.Suite), Name: c.Name, Epoch: c.Epoch, Head: c.Hash, Created: h.now()}
	rec := store.Commit{Room: id, Epoch: c.Epoch, Hash: c.Hash, Blob: commitBlob}
	if err := h.st.CreateRoom(ctx, r, rec, storeMembers(c)); err != nil {
		if errors.Is(err, store.ErrExists) {
			return nil, fmt.Errorf("%w: room %s exists under another create commit", ErrCommitConflict, id)
		}
		return nil, err
	}
	return c, nil
}

// CommitResult is what ApplyCommit did.
type CommitResult struct {
	// Commit is the verified commit, now the room's head.
	Commit *Commit
	// Previous is the member list before it (on a retry of the head: the
	// list it leaves, the same as Commit's).
	Previous []store.Member
	// Retry reports that the commit was already the room's and nothing
	// changed.
	Retry bool
}

// ApplyCommit verifies the master's next commit (invite, remove or
// rotate) and makes it the room's head. Only the master may commit
// (ErrNotMaster), with a commit it signed; the commit must start the
// epoch after the head on the head's hash (an *EpochError with
// ErrCommitConflict otherwise, unless it is the head itself: a retry that
// succeeds), keep the room's name and suite, fit its operation
// (ErrBadCommit), and list only members whose key packages the host
// holds (ErrMissingKeyPackage). A member that left stays listed until a
// commit drops it.
func (h *Host) ApplyCommit(ctx context.Context, caller *cryptosuite.PublicKey, id store.RoomID, commitBlob []byte) (*CommitResult, error) {
	r, err := h.master(ctx, id, caller.PeerID())
	if err != nil {
		return nil, err
	}
	c, err := VerifyCommit(commitBlob, caller, &h.lim)
	if err != nil {
		return nil, err
	}
	if store.RoomID(c.Room) != id {
		return nil, fmt.Errorf("%w: commit of room %x sent for room %s", ErrWrongRoom, c.Room[:], id)
	}
	prev, err := h.st.Members(ctx, id)
	if err != nil {
		return nil, roomErr(err, id)
	}
	if c.Epoch <= r.Epoch {
		stored, err := h.st.GetCommit(ctx, id, c.Epoch)
		if err == nil && stored.Hash == c.Hash && c.Epoch == r.Epoch {
			return &CommitResult{Commit: c, Previous: prev, Retry: true}, nil
		}
		return nil, &EpochError{Err: ErrCommitConflict, Epoch: c.Epoch, Current: r.Epoch}
	}
	if c.Epoch != r.Epoch+1 || c.Previous != r.Head {
		return nil, &EpochError{Err: ErrCommitConflict, Epoch: c.Epoch, Current: r.Epoch}
	}
	switch {
	case c.Name != r.Name:
		return nil, fmt.Errorf("%w: the commit renames the room", ErrBadCommit)
	case uint16(c.Suite) != r.Suite:
		return nil, fmt.Errorf("%w: the commit changes the room's AEAD suite", ErrBadCommit)
	}
	old := make([]Member, len(prev))
	before := make(map[cryptosuite.PeerID][HashSize]byte, len(prev))
	for i, m := range prev {
		old[i] = Member{Peer: m.Peer, KeyPackage: m.KeyPackageHash}
		before[m.Peer] = m.KeyPackageHash
	}
	// The store keeps the latest commit's order, which is ascending.
	if err := checkMembership(c.Operation, old, c.Members); err != nil {
		return nil, fmt.Errorf("%w: epoch %d: %w", ErrBadCommit, c.Epoch, err)
	}
	if err := h.checkMemberKeyPackages(ctx, c, before); err != nil {
		return nil, err
	}
	rec := store.Commit{Room: id, Epoch: c.Epoch, Hash: c.Hash, Blob: commitBlob}
	if _, err := h.st.ApplyCommit(ctx, id, r.Epoch, rec, storeMembers(c)); err != nil {
		if errors.Is(err, store.ErrConflict) {
			cur, _ := h.st.GetRoom(ctx, id)
			return nil, &EpochError{Err: ErrCommitConflict, Epoch: c.Epoch, Current: cur.Epoch}
		}
		return nil, roomErr(err, id)
	}
	return &CommitResult{Commit: c, Previous: prev}, nil
}

// UploadWrappedKey verifies a wrapped key the master uploads (signed by
// the caller, the master) against the commit of its epoch
// (CheckWrappedKey: a member that commit lists, with the key package it
// lists) and stores it. The same key again succeeds; another for the same
// member and epoch is ErrKeyConflict.
func (h *Host) UploadWrappedKey(ctx context.Context, caller *cryptosuite.PublicKey, id store.RoomID, blob []byte) (*WrappedKey, error) {
	if _, err := h.master(ctx, id, caller.PeerID()); err != nil {
		return nil, err
	}
	w, err := VerifyWrappedKey(blob, caller)
	if err != nil {
		return nil, err
	}
	if store.RoomID(w.Room) != id {
		return nil, fmt.Errorf("%w: wrapped key of room %x sent for room %s", ErrWrongRoom, w.Room[:], id)
	}
	c, err := h.commit(ctx, id, w.Epoch, caller)
	if err != nil {
		return nil, err
	}
	if err := CheckWrappedKey(c, w); err != nil {
		return nil, err
	}
	if err := h.st.PutWrappedKey(ctx, store.WrappedKey{Room: id, Epoch: w.Epoch, Member: w.Member, Blob: blob}); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, fmt.Errorf("%w: another wrapped key for %s at epoch %d is stored", ErrKeyConflict, w.Member.Short(), w.Epoch)
		}
		return nil, roomErr(err, id)
	}
	return w, nil
}

// RoomListing is one room of ListRooms: its state and the caller's place.
type RoomListing struct {
	Room store.Room
	Role store.Role
	// Left reports that the caller asked to leave and is not yet removed.
	Left bool
}

// ListRooms lists the rooms the caller is a member of (also those it has
// asked to leave and is not yet removed from), in byte order of their
// ids after after, at most limit (1 to store.MaxListLimit).
func (h *Host) ListRooms(ctx context.Context, caller cryptosuite.PeerID, after store.RoomID, limit int) ([]RoomListing, error) {
	rooms, err := h.st.ListRooms(ctx, caller, after, limit)
	if err != nil {
		return nil, err
	}
	out := make([]RoomListing, 0, len(rooms))
	for _, r := range rooms {
		m, err := h.st.GetMember(ctx, r.ID, caller)
		if errors.Is(err, store.ErrNotFound) {
			continue // removed or deleted since the listing
		}
		if err != nil {
			return nil, err
		}
		out = append(out, RoomListing{Room: r, Role: m.Role, Left: m.Leave != nil})
	}
	return out, nil
}

// RoomInfo is a room's state on its host, for RoomInfo.
type RoomInfo struct {
	Room store.Room
	// Span is the range of sequence numbers the history holds.
	Span store.Span
	// Members is the member list (in ascending order of peer ID), leave
	// requests included.
	Members []store.Member
}

// Info returns the room's state, history span and members, with each
// member's acknowledged epoch (why a member cannot read something has an
// answer there). Members only.
func (h *Host) Info(ctx context.Context, caller cryptosuite.PeerID, id store.RoomID) (*RoomInfo, error) {
	if _, _, err := h.member(ctx, id, caller); err != nil {
		return nil, err
	}
	// Read the members and span after the room, then the room again: a
	// commit in between shows as a newer epoch than the members'.
	members, err := h.st.Members(ctx, id)
	if err != nil {
		return nil, roomErr(err, id)
	}
	span, err := h.st.MessageSpan(ctx, id)
	if err != nil {
		return nil, roomErr(err, id)
	}
	r, err := h.st.GetRoom(ctx, id)
	if err != nil {
		return nil, roomErr(err, id)
	}
	return &RoomInfo{Room: r, Span: span, Members: members}, nil
}

// Leave verifies a leave request signed by the caller, a member other
// than the master (ErrMasterCannotLeave), for this room and an epoch the
// room has reached (ErrStaleLeave), and applies it at once: the caller
// reads and posts no more (ErrLeft), and the master's client turns the
// request into a remove commit. A second request succeeds and changes
// nothing.
func (h *Host) Leave(ctx context.Context, caller *cryptosuite.PublicKey, id store.RoomID, blob []byte) (*LeaveRequest, error) {
	lr, err := VerifyLeaveRequest(blob, caller)
	if err != nil {
		return nil, err
	}
	if store.RoomID(lr.Room) != id {
		return nil, fmt.Errorf("%w: leave request of room %x sent for room %s", ErrWrongRoom, lr.Room[:], id)
	}
	r, err := h.st.GetRoom(ctx, id)
	if err != nil {
		return nil, roomErr(err, id)
	}
	m, err := h.st.GetMember(ctx, id, caller.PeerID())
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s in room %s", ErrNotMember, caller.PeerID().Short(), id)
	}
	if err != nil {
		return nil, roomErr(err, id)
	}
	if m.Role == store.RoleMaster {
		return nil, ErrMasterCannotLeave
	}
	if lr.Epoch > r.Epoch {
		return nil, fmt.Errorf("%w: signed at epoch %d, room at epoch %d", ErrStaleLeave, lr.Epoch, r.Epoch)
	}
	if err := h.st.RecordLeave(ctx, id, caller.PeerID(), blob); err != nil {
		return nil, roomErr(err, id)
	}
	return lr, nil
}

// LeaveRequest returns a member's leave request, for the master's client
// to verify and turn into a remove commit. Master only; ErrNotFound when
// the member has not asked to leave.
func (h *Host) LeaveRequest(ctx context.Context, caller cryptosuite.PeerID, id store.RoomID, peer cryptosuite.PeerID) ([]byte, error) {
	if _, err := h.master(ctx, id, caller); err != nil {
		return nil, err
	}
	m, err := h.st.GetMember(ctx, id, peer)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s in room %s", ErrNotMember, peer.Short(), id)
	}
	if err != nil {
		return nil, roomErr(err, id)
	}
	if m.Leave == nil {
		return nil, fmt.Errorf("%w: %s has not asked to leave room %s", ErrNotFound, peer.Short(), id)
	}
	return m.Leave, nil
}

// Delete deletes the room and everything of it. Master only. It returns
// the member list the room had, to tell them.
func (h *Host) Delete(ctx context.Context, caller cryptosuite.PeerID, id store.RoomID) ([]store.Member, error) {
	if _, err := h.master(ctx, id, caller); err != nil {
		return nil, err
	}
	members, err := h.st.Members(ctx, id)
	if err != nil {
		return nil, roomErr(err, id)
	}
	if err := h.st.DeleteRoom(ctx, id); err != nil {
		return nil, roomErr(err, id)
	}
	return members, nil
}

// Send verifies a message the caller posts and stores it under the
// room's next sequence number. The caller must be a member that has not
// left and the message's sender (ErrNotOwner: nobody posts another's
// message, forged or replayed); the message must verify under the key
// package it names, which the host holds (ErrWrongKeyPackage otherwise),
// be of this room, and, under the current epoch, name the current commit
// and the key package the epoch lists for the sender. A message under an
// older epoch is refused with an *EpochError (ErrOldEpoch) unless it is a
// retry: a message id the sender already used returns the first send's
// stored message, whatever the epoch. Another sender's id is
// ErrMessageIDTaken.
func (h *Host) Send(ctx context.Context, caller cryptosuite.PeerID, id store.RoomID, blob []byte) (store.Message, error) {
	// The claimed signer first, to find the key package; the blob is
	// parsed once (what VerifyMessage does, without copying the box).
	layout, sig, err := SplitBlob(blob, canon.LabelRoomMessage, MaxMessageBlob)
	if err != nil {
		return store.Message{}, err
	}
	msg, err := parseMessage(layout)
	if err != nil {
		return store.Message{}, err
	}
	sender, kph := msg.Sender, msg.KeyPackage
	r, m, err := h.member(ctx, id, caller)
	if err != nil {
		return store.Message{}, err
	}
	if sender != caller {
		return store.Message{}, fmt.Errorf("%w: message of %s posted by %s", ErrNotOwner, sender.Short(), caller.Short())
	}
	kp, err := h.keyPackage(ctx, kph)
	if errors.Is(err, ErrNotFound) {
		return store.Message{}, fmt.Errorf("%w: the message names a key package %x the host does not hold", ErrWrongKeyPackage, kph[:6])
	}
	if err != nil {
		return store.Message{}, err
	}
	if err := verifyMessageSig(layout, sig, kp, !h.skipSigs); err != nil {
		return store.Message{}, err
	}
	if err := msg.signedBy(kp); err != nil {
		return store.Message{}, err
	}
	switch {
	case store.RoomID(msg.Room) != id:
		return store.Message{}, fmt.Errorf("%w: message of room %x sent for room %s", ErrWrongRoom, msg.Room[:], id)
	case msg.Epoch > r.Epoch:
		return store.Message{}, fmt.Errorf("%w: message under epoch %d, room at epoch %d", ErrUnknownEpoch, msg.Epoch, r.Epoch)
	case msg.Epoch == r.Epoch && msg.Commit != r.Head:
		return store.Message{}, fmt.Errorf("%w: the message names another commit than epoch %d's", ErrChainBroken, msg.Epoch)
	case msg.Epoch == r.Epoch && kph != m.KeyPackageHash:
		return store.Message{}, fmt.Errorf("%w: epoch %d lists another key package for %s", ErrWrongKeyPackage, msg.Epoch, caller.Short())
	}
	// Under an older epoch the message is only ever a retry (the store
	// returns the first send) or refused as stale: nothing new is stored.
	stored, err := h.st.AppendMessage(ctx, store.Message{
		Room: id, ID: store.MessageID(msg.ID), Sender: sender, Epoch: msg.Epoch,
		KeyPackageHash: kph, Blob: blob, Stored: h.now(),
	})
	switch {
	case errors.Is(err, store.ErrConflict):
		return store.Message{}, fmt.Errorf("%w: %x", ErrMessageIDTaken, msg.ID[:])
	case errors.Is(err, store.ErrStale):
		cur, gerr := h.st.GetRoom(ctx, id)
		if gerr != nil {
			return store.Message{}, roomErr(gerr, id)
		}
		return store.Message{}, &EpochError{Err: ErrOldEpoch, Epoch: msg.Epoch, Current: cur.Epoch}
	case errors.Is(err, store.ErrInvalid):
		// A commit raced the checks above: the room moved past the
		// epoch seen, so this is as good as stale.
		return store.Message{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
	case err != nil:
		return store.Message{}, roomErr(err, id)
	}
	return stored, nil
}

// Read returns the room's messages after the cursor, at most limit (1 to
// store.MaxListLimit). Members only. A cursor before the history the
// store keeps is a *store.HistoryTrimmedError naming the oldest kept; a
// cursor past the last message is ErrBadRequest.
func (h *Host) Read(ctx context.Context, caller cryptosuite.PeerID, id store.RoomID, after uint64, limit int) ([]store.Message, error) {
	if _, _, err := h.member(ctx, id, caller); err != nil {
		return nil, err
	}
	msgs, err := h.st.ReadMessages(ctx, id, after, limit)
	if errors.Is(err, store.ErrInvalid) {
		return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	if err != nil {
		return nil, roomErr(err, id)
	}
	return msgs, nil
}

// FetchWrappedKey returns the caller's own wrapped key of epoch. Members
// only: a removed member gets ErrNotMember, not a key.
func (h *Host) FetchWrappedKey(ctx context.Context, caller cryptosuite.PeerID, id store.RoomID, epoch uint64) ([]byte, error) {
	if _, _, err := h.member(ctx, id, caller); err != nil {
		return nil, err
	}
	wk, err := h.st.GetWrappedKey(ctx, id, epoch, caller)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s at epoch %d", ErrNoWrappedKey, caller.Short(), epoch)
	}
	if err != nil {
		return nil, roomErr(err, id)
	}
	return wk.Blob, nil
}

// Ack records that the caller holds the room key of epoch (monotonic).
// Members only; an epoch beyond the room's is ErrBadRequest.
func (h *Host) Ack(ctx context.Context, caller cryptosuite.PeerID, id store.RoomID, epoch uint64) error {
	if _, _, err := h.member(ctx, id, caller); err != nil {
		return err
	}
	err := h.st.AckEpoch(ctx, id, caller, epoch)
	if errors.Is(err, store.ErrInvalid) {
		return fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	return roomErr(err, id)
}

// Commits returns the room's commits after afterEpoch, at most limit, and
// the room's current epoch, so a member can verify the chain up to it.
// Members only.
func (h *Host) Commits(ctx context.Context, caller cryptosuite.PeerID, id store.RoomID, afterEpoch uint64, limit int) ([]store.Commit, uint64, error) {
	r, _, err := h.member(ctx, id, caller)
	if err != nil {
		return nil, 0, err
	}
	cs, err := h.st.ListCommits(ctx, id, afterEpoch, limit)
	if err != nil {
		return nil, 0, roomErr(err, id)
	}
	return cs, r.Epoch, nil
}

// KeyPackage returns the key package with hash, expired or not, as long
// as the host holds it (it keeps those that stored messages and members
// name), for any caller: it verifies a message's signer.
func (h *Host) KeyPackage(ctx context.Context, hash [HashSize]byte) ([]byte, error) {
	rec, err := h.st.GetKeyPackage(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: key package %x", ErrNotFound, hash[:6])
	}
	if err != nil {
		return nil, err
	}
	return rec.Blob, nil
}

// LatestKeyPackage returns peer's unexpired key package of the latest
// expiry, for a master about to invite it or wrap to it; a peer without
// one is ErrMissingKeyPackage, whose text tells it to dial this host once.
func (h *Host) LatestKeyPackage(ctx context.Context, peer cryptosuite.PeerID) ([]byte, error) {
	rec, err := h.st.LatestKeyPackage(ctx, peer, h.now())
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s has no key package on this host (it must dial this host once to publish one)",
			ErrMissingKeyPackage, peer.Short())
	}
	if err != nil {
		return nil, err
	}
	return rec.Blob, nil
}

// Members returns the room's member list (for pushes), or ErrNoRoom.
func (h *Host) Members(ctx context.Context, id store.RoomID) ([]store.Member, error) {
	ms, err := h.st.Members(ctx, id)
	return ms, roomErr(err, id)
}
