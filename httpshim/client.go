package httpshim

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/node"
	"github.com/lanpeer/lanpeer/room"
	"github.com/lanpeer/lanpeer/session"
	"github.com/lanpeer/lanpeer/store"
	"github.com/lanpeer/lanpeer/wire"
)

// Client speaks the shim's API: the handshake, then signed requests. Set
// the fields, call Handshake, then the room methods. Safe for concurrent
// use after Handshake.
type Client struct {
	// BaseURL is the shim's address, e.g. "http://127.0.0.1:8080".
	BaseURL string
	// HTTPClient defaults to http.DefaultClient.
	HTTPClient *http.Client
	// Identity signs the hello. Required.
	Identity *cryptosuite.Identity
	// KEX, AEADs and AllowRSA are the handshake's (session.Config).
	KEX      cryptosuite.KEXID
	AEADs    []cryptosuite.AEADID
	AllowRSA bool
	// Expected is the listener's peer ID; zero means trust on first use
	// (check Peer afterwards).
	Expected cryptosuite.PeerID
	// Now defaults to time.Now.
	Now func() time.Time

	mu      sync.Mutex
	sid     string
	authKey [session.AuthKeySize]byte
	peer    *cryptosuite.PublicKey
	keys    *session.Keys
}

// maxResponse bounds a response body the client reads: the largest
// list reply, base64-inflated, with room for JSON.
const maxResponse = 4 * wire.MaxRequestFrame

// APIError is an error response of the shim.
type APIError struct {
	Status  int
	Code    string // docs/HTTP.md's code, e.g. "bad-mac"
	Reason  string // a room refusal's reason, e.g. "stale-epoch"
	Value   uint64 // the reason's number
	Message string

	cause error
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("httpshim: %d %s", e.Status, e.Code)
	if e.Reason != "" {
		s += " (" + e.Reason + ")"
	}
	return s + ": " + e.Message
}

// Unwrap returns, for a room refusal, the *node.RoomError a TCP client
// would get, which matches room's and store's errors.
func (e *APIError) Unwrap() error { return e.cause }

func (c *Client) httpClient() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	return http.DefaultClient
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Handshake runs the two round trips of docs/HTTP.md and keeps the
// session for the requests that follow.
func (c *Client) Handshake(ctx context.Context) error {
	scfg := &session.Config{Identity: c.Identity, KEX: c.KEX, AEADs: c.AEADs, AllowRSA: c.AllowRSA, Now: c.Now}
	h, err := session.NewRequestor(scfg, session.Params{Transport: session.TransportHTTP, Expected: c.Expected})
	if err != nil {
		return err
	}
	defer h.Abort()
	hello, err := h.CreateHello()
	if err != nil {
		return err
	}
	hj, err := helloToJSON(hello)
	if err != nil {
		return err
	}
	var rj HelloReplyJSON
	if err := c.post(ctx, "/v1/handshake/init", hj, &rj, false); err != nil {
		return err
	}
	reply, err := helloReplyFromJSON(&rj)
	if err != nil {
		return fmt.Errorf("httpshim: the listener's reply: %w", err)
	}
	if err := h.ConsumeReply(reply); err != nil {
		return err
	}
	fin, keys, err := h.CreateFinished()
	if err != nil {
		return err
	}
	var sj SessionJSON
	if err := c.post(ctx, "/v1/handshake/finish", FinishJSON{Session: rj.Session, MAC: fin.MAC}, &sj, false); err != nil {
		keys.Wipe()
		return err
	}
	c.mu.Lock()
	c.sid, c.authKey, c.peer, c.keys = rj.Session, keys.AuthKey, keys.Peer, keys
	c.mu.Unlock()
	return nil
}

// Peer returns the listener's identity once Handshake has succeeded.
func (c *Client) Peer() *cryptosuite.PublicKey {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peer
}

// Keys returns the session's keys once Handshake has succeeded.
func (c *Client) Keys() *session.Keys {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.keys
}

// SessionID returns the session id as the headers carry it.
func (c *Client) SessionID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sid
}

// Sign adds the authentication headers of the session to req, whose body
// is body, with a fresh nonce and the current time.
func (c *Client) Sign(req *http.Request, body []byte) error {
	c.mu.Lock()
	sid, key := c.sid, c.authKey
	c.mu.Unlock()
	if sid == "" {
		return errors.New("httpshim: no session: call Handshake first")
	}
	var n [16]byte
	if _, err := rand.Read(n[:]); err != nil {
		return err
	}
	nonce := hex.EncodeToString(n[:])
	ts := strconv.FormatInt(c.now().UnixMilli(), 10)
	target := req.URL.RequestURI()
	mac := RequestMAC(key[:], sid, req.Method, target, BodyHash(body), ts, nonce)
	req.Header.Set(HeaderSession, sid)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderNonce, nonce)
	req.Header.Set(HeaderMAC, hex.EncodeToString(mac[:]))
	return nil
}

// NewRequest returns a signed request for target (a path and query) with
// a JSON body (nil for none).
func (c *Client) NewRequest(ctx context.Context, method, target string, body []byte) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.BaseURL, "/")+target, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if err := c.Sign(req, body); err != nil {
		return nil, err
	}
	return req, nil
}

func (c *Client) post(ctx context.Context, target string, in, out any, signed bool) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	var req *http.Request
	if signed {
		req, err = c.NewRequest(ctx, http.MethodPost, target, b)
	} else {
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(c.BaseURL, "/")+target, bytes.NewReader(b))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
		}
	}
	if err != nil {
		return err
	}
	return c.do(req, out)
}

// Do sends a signed request (body nil for GET and DELETE) and decodes the
// JSON answer into out (nil: ignored); an error response is an *APIError.
func (c *Client) Do(ctx context.Context, method, target string, body, out any) error {
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			return err
		}
	}
	req, err := c.NewRequest(ctx, method, target, b)
	if err != nil {
		return err
	}
	return c.do(req, out)
}

func (c *Client) do(req *http.Request, out any) error {
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return err
	}
	if len(b) > maxResponse {
		return errors.New("httpshim: response too large")
	}
	if resp.StatusCode != http.StatusOK {
		return parseAPIError(resp.StatusCode, b)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("httpshim: decoding the response: %w", err)
	}
	return nil
}

func parseAPIError(status int, b []byte) *APIError {
	var eb errorBody
	if err := json.Unmarshal(b, &eb); err != nil || eb.Error.Code == "" {
		return &APIError{Status: status, Code: "unknown", Message: http.StatusText(status)}
	}
	e := &APIError{Status: status, Code: eb.Error.Code, Reason: eb.Error.Reason, Value: eb.Error.Value, Message: eb.Error.Message}
	if e.Reason != "" {
		code, _ := wire.ParseErrorCode(e.Code)
		for r := wire.RoomReason(1); r <= wire.MaxRoomReason; r++ {
			if r.String() == e.Reason {
				e.cause = node.RoomErrorFromWire(&wire.RoomError{Code: code, Reason: r, Value: e.Value})
				break
			}
		}
	}
	return e
}

// Close ends the session (DELETE /v1/session).
func (c *Client) Close(ctx context.Context) error {
	err := c.Do(ctx, http.MethodDelete, "/v1/session", nil, nil)
	c.mu.Lock()
	clear(c.authKey[:])
	c.sid = ""
	if c.keys != nil {
		c.keys.Wipe()
	}
	c.mu.Unlock()
	return err
}

// Room operations, as node.RoomClient's.

func roomPath(id store.RoomID, rest string) string { return "/v1/rooms/" + id.String() + rest }

// PublishKeyPackage publishes this peer's key package blob.
func (c *Client) PublishKeyPackage(ctx context.Context, blob []byte) error {
	return c.Do(ctx, http.MethodPost, "/v1/key-packages", map[string][]byte{"key_package": blob}, nil)
}

// CreateRoom uploads a create commit and returns the room's id.
func (c *Client) CreateRoom(ctx context.Context, commit []byte) (store.RoomID, error) {
	var out struct {
		Room string `json:"room"`
	}
	if err := c.Do(ctx, http.MethodPost, "/v1/rooms", map[string][]byte{"commit": commit}, &out); err != nil {
		return store.RoomID{}, err
	}
	b, err := parseHexID("room", out.Room, wire.RoomIDSize)
	if err != nil {
		return store.RoomID{}, err
	}
	return store.RoomID(b), nil
}

// Commit uploads the master's next commit and returns the room's epoch.
func (c *Client) Commit(ctx context.Context, id store.RoomID, commit []byte) (uint64, error) {
	var out struct {
		Epoch uint64 `json:"epoch"`
	}
	err := c.Do(ctx, http.MethodPost, roomPath(id, "/commits"), map[string][]byte{"commit": commit}, &out)
	return out.Epoch, err
}

// UploadWrappedKey uploads one wrapped key (master only).
func (c *Client) UploadWrappedKey(ctx context.Context, id store.RoomID, blob []byte) error {
	return c.Do(ctx, http.MethodPost, roomPath(id, "/wrapped-keys"), map[string][]byte{"wrapped": blob}, nil)
}

// Propose uploads a proposal's commit (create or another operation), then
// its wrapped keys, as node.RoomClient's CreateProposal and Invite do.
func (c *Client) Propose(ctx context.Context, p *room.Proposal) error {
	if p == nil || p.Info == nil {
		return errors.New("httpshim: no proposal")
	}
	id := store.RoomID(p.Info.Room)
	var err error
	if p.Info.Operation == room.OpCreate {
		_, err = c.CreateRoom(ctx, p.Commit)
	} else {
		_, err = c.Commit(ctx, id, p.Commit)
	}
	if err != nil {
		return err
	}
	for _, w := range p.Wrapped {
		if err := c.UploadWrappedKey(ctx, id, w.Blob); err != nil {
			return fmt.Errorf("httpshim: wrapped key for %s: %w", w.Member.Short(), err)
		}
	}
	return nil
}

// ListRooms lists this peer's rooms after after (zero: from the first).
func (c *Client) ListRooms(ctx context.Context, after store.RoomID, limit int) ([]RoomEntryJSON, error) {
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if !after.IsZero() {
		q.Set("after", after.String())
	}
	var out struct {
		Rooms []RoomEntryJSON `json:"rooms"`
	}
	err := c.Do(ctx, http.MethodGet, "/v1/rooms?"+q.Encode(), nil, &out)
	return out.Rooms, err
}

// RoomInfo returns a room's state and its first page of members.
func (c *Client) RoomInfo(ctx context.Context, id store.RoomID) (*RoomInfoJSON, error) {
	var out RoomInfoJSON
	if err := c.Do(ctx, http.MethodGet, roomPath(id, ""), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Leave hands the host this peer's signed leave request.
func (c *Client) Leave(ctx context.Context, id store.RoomID, blob []byte) error {
	return c.Do(ctx, http.MethodPost, roomPath(id, "/leave"), map[string][]byte{"leave": blob}, nil)
}

// Delete deletes the room (master only).
func (c *Client) Delete(ctx context.Context, id store.RoomID) error {
	return c.Do(ctx, http.MethodDelete, roomPath(id, ""), nil, nil)
}

// Send posts a signed message and returns its sequence number.
func (c *Client) Send(ctx context.Context, id store.RoomID, blob []byte) (uint64, error) {
	var out struct {
		Seq uint64 `json:"seq"`
	}
	// {"message":"BASE64"}, as json.Marshal writes it.
	body := make([]byte, 0, len(`{"message":""}`)+base64.StdEncoding.EncodedLen(len(blob)))
	body = append(base64.StdEncoding.AppendEncode(append(body, `{"message":"`...), blob), `"}`...)
	req, err := c.NewRequest(ctx, http.MethodPost, roomPath(id, "/messages"), body)
	if err != nil {
		return 0, err
	}
	err = c.do(req, &out)
	return out.Seq, err
}

// Read returns the messages after the cursor, at most limit; with wait >
// 0, a long poll that answers when a message arrives or wait has passed.
func (c *Client) Read(ctx context.Context, id store.RoomID, after uint64, limit int, wait time.Duration) ([]MessageJSON, error) {
	q := url.Values{"after": {strconv.FormatUint(after, 10)}, "limit": {strconv.Itoa(limit)}}
	if wait > 0 {
		q.Set("wait", strconv.FormatInt(wait.Milliseconds(), 10))
	}
	var out struct {
		Messages []MessageJSON `json:"messages"`
	}
	if err := c.Do(ctx, http.MethodGet, roomPath(id, "/messages?"+q.Encode()), nil, &out); err != nil {
		return nil, err
	}
	for i, m := range out.Messages {
		if want := after + uint64(i) + 1; m.Seq != want {
			return nil, fmt.Errorf("httpshim: the host served message %d where %d follows the cursor", m.Seq, want)
		}
	}
	return out.Messages, nil
}

// FetchWrappedKey returns this peer's wrapped key of epoch.
func (c *Client) FetchWrappedKey(ctx context.Context, id store.RoomID, epoch uint64) ([]byte, error) {
	var out struct {
		Wrapped []byte `json:"wrapped"`
	}
	err := c.Do(ctx, http.MethodGet, roomPath(id, "/wrapped-keys/"+strconv.FormatUint(epoch, 10)), nil, &out)
	return out.Wrapped, err
}

// Ack records that this peer holds the room key of epoch.
func (c *Client) Ack(ctx context.Context, id store.RoomID, epoch uint64) error {
	return c.Do(ctx, http.MethodPost, roomPath(id, "/acks"), map[string]uint64{"epoch": epoch}, nil)
}

// FetchCommits returns the commits after the epoch and the room's epoch.
func (c *Client) FetchCommits(ctx context.Context, id store.RoomID, after uint64, limit int) ([][]byte, uint64, error) {
	cl, err := c.CommitList(ctx, id, after, limit)
	if err != nil {
		return nil, 0, err
	}
	return cl.Commits, cl.Epoch, nil
}

// CommitList returns the commits after the epoch as the endpoint answers
// them: with the room's epoch, its master and the master's identity key,
// unchecked (MasterKey checks them).
func (c *Client) CommitList(ctx context.Context, id store.RoomID, after uint64, limit int) (*CommitListJSON, error) {
	var out CommitListJSON
	q := url.Values{"after": {strconv.FormatUint(after, 10)}, "limit": {strconv.Itoa(limit)}}
	if err := c.Do(ctx, http.MethodGet, roomPath(id, "/commits?"+q.Encode()), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// errWrongMasterKey: the host served a key that is not the master's
// (node.ErrWrongMasterKey, the TCP client's check).
var errWrongMasterKey = node.ErrWrongMasterKey

// VerifyMasterKey checks what the host says of a room's master (room info
// and commit lists carry both): spki must be an identity key whose
// SHA-256 is the peer ID master. The key then verifies the room's
// commits and wrapped keys (room.VerifyCommit, room.NewMemberState).
func VerifyMasterKey(master string, spki []byte) (*cryptosuite.PublicKey, error) {
	id, err := cryptosuite.ParsePeerID(master)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errWrongMasterKey, err)
	}
	return node.VerifyMasterKey(id, spki)
}

// MasterKey returns the identity key of the room's master, checked
// against the master's peer ID (VerifyMasterKey): one request, where a
// TCP client's node.RoomClient.RoomInfo does the same.
func (c *Client) MasterKey(ctx context.Context, id store.RoomID) (*cryptosuite.PublicKey, error) {
	info, err := c.RoomInfo(ctx, id)
	if err != nil {
		return nil, err
	}
	return VerifyMasterKey(info.Master, info.MasterKey)
}

// FetchKeyPackage returns the key package with hash.
func (c *Client) FetchKeyPackage(ctx context.Context, hash [32]byte) ([]byte, error) {
	var out keyPackageJSON
	err := c.Do(ctx, http.MethodGet, "/v1/key-packages/"+hex.EncodeToString(hash[:]), nil, &out)
	return out.KeyPackage, err
}

// LatestKeyPackage returns peer's latest unexpired key package.
func (c *Client) LatestKeyPackage(ctx context.Context, peer cryptosuite.PeerID) ([]byte, error) {
	var out keyPackageJSON
	err := c.Do(ctx, http.MethodGet, "/v1/peers/"+peer.String()+"/key-package", nil, &out)
	return out.KeyPackage, err
}

// FetchLeave returns a member's leave request (master only).
func (c *Client) FetchLeave(ctx context.Context, id store.RoomID, peer cryptosuite.PeerID) ([]byte, error) {
	var out struct {
		Leave []byte `json:"leave"`
	}
	err := c.Do(ctx, http.MethodGet, roomPath(id, "/leaves/"+peer.String()), nil, &out)
	return out.Leave, err
}

// Event is one Server-Sent Event.
type Event struct {
	ID   string
	Kind string
	Data []byte
}

// EventStream reads an event stream. Close it when done.
type EventStream struct {
	resp *http.Response
	r    *bufio.Reader
}

// maxEventLine bounds one line of an event stream.
const maxEventLine = 64 << 10

// Events opens an event stream: "/v1/events" or a room's
// "/v1/rooms/ROOM/events"; lastID, if not empty, resumes after it.
func (c *Client) Events(ctx context.Context, target, lastID string) (*EventStream, error) {
	req, err := c.NewRequest(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, err
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
		return nil, parseAPIError(resp.StatusCode, b)
	}
	return &EventStream{resp: resp, r: bufio.NewReaderSize(resp.Body, maxEventLine)}, nil
}

// RoomEvents opens the event stream of a room's messages.
func (c *Client) RoomEvents(ctx context.Context, id store.RoomID, lastID string) (*EventStream, error) {
	return c.Events(ctx, roomPath(id, "/events"), lastID)
}

// Next returns the next event, skipping comments.
func (es *EventStream) Next() (Event, error) {
	var ev Event
	var data bytes.Buffer
	for lines := 0; lines < 1<<16; lines++ {
		line, err := es.r.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				return ev, errors.New("httpshim: event line too long")
			}
			return ev, err
		}
		if len(line) > maxEventLine {
			return ev, errors.New("httpshim: event line too long")
		}
		s := strings.TrimRight(string(line), "\r\n")
		switch {
		case s == "":
			if ev.Kind != "" || data.Len() > 0 {
				ev.Data = data.Bytes()
				return ev, nil
			}
		case strings.HasPrefix(s, ":"):
		case strings.HasPrefix(s, "id: "):
			ev.ID = s[4:]
		case strings.HasPrefix(s, "event: "):
			ev.Kind = s[7:]
		case strings.HasPrefix(s, "data: "):
			if data.Len()+len(s) > maxResponse {
				return ev, errors.New("httpshim: event too large")
			}
			data.WriteString(s[6:])
		}
	}
	return ev, errors.New("httpshim: event too long")
}

// Close ends the stream.
func (es *EventStream) Close() error { return es.resp.Body.Close() }
