package directory

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
)

// Client talks to a directory. The directory is not trusted: Lookup
// verifies every answer itself. The zero value is not usable: BaseURL is
// required. A Client is safe for concurrent use.
type Client struct {
	// BaseURL is the directory's root, e.g. "https://dir.example:8470".
	BaseURL string
	// HTTPClient sends the requests (default: http.DefaultClient). Give
	// it a Timeout, or pass contexts with deadlines.
	HTTPClient *http.Client
	// Now is the clock records are checked against (default time.Now).
	Now func() time.Time
}

// Errors of Client beyond the record errors.
var (
	// ErrNotFound: the directory holds no unexpired record for the peer.
	ErrNotFound = errors.New("directory: no record for this peer")
	// ErrStale: the directory holds a record issued at the same time or
	// later than the one registered.
	ErrStale = errors.New("directory: a newer record is registered")
	// ErrRateLimited: the directory asks the client to slow down.
	ErrRateLimited = errors.New("directory: rate limited")
	// ErrUnavailable: the directory or its store is unavailable.
	ErrUnavailable = errors.New("directory: unavailable")
)

// maxErrorBody bounds the error body a client reads.
const maxErrorBody = 4 << 10

// APIError is a directory's error answer. It matches ErrNotFound,
// ErrStale, ErrRateLimited or ErrUnavailable with errors.Is by status.
type APIError struct {
	Status  int    // HTTP status
	Code    string // the error code of docs/HTTP.md, or "" if the body had none
	Message string // the directory's message, cut to 200 bytes
}

// Error quotes the directory's words: they are not this program's.
func (e *APIError) Error() string {
	return fmt.Sprintf("directory: server answered %d %q: %q", e.Status, e.Code, e.Message)
}

// Is maps statuses to the sentinels.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Status == http.StatusNotFound && e.Code == CodeNotFound
	case ErrStale:
		return e.Status == http.StatusConflict
	case ErrRateLimited:
		return e.Status == http.StatusTooManyRequests
	case ErrUnavailable:
		return e.Status == http.StatusServiceUnavailable
	}
	return false
}

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

func (c *Client) url(peer cryptosuite.PeerID) string {
	return strings.TrimRight(c.BaseURL, "/") + recordsPrefix + peer.String()
}

// Register stores rec in the directory. A record not newer than the one
// registered is ErrStale (an *APIError).
func (c *Client) Register(ctx context.Context, rec *Record) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, c.url(rec.Peer), bytes.NewReader(rec.blob))
	if err != nil {
		return fmt.Errorf("directory: %w", err)
	}
	req.Header.Set("Content-Type", contentBlob)
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return fmt.Errorf("directory: register: %w", err)
	}
	defer drain(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return readAPIError(resp)
	}
	return nil
}

// Lookup asks the directory for peer's record and verifies it: signature,
// bounds, expiry at the client's clock, and that it is peer's. A record
// for another peer is ErrWrongPeer; none is ErrNotFound.
func (c *Client) Lookup(ctx context.Context, peer cryptosuite.PeerID) (*Record, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url(peer), nil)
	if err != nil {
		return nil, fmt.Errorf("directory: %w", err)
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("directory: lookup: %w", err)
	}
	defer drain(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, readAPIError(resp)
	}
	if resp.ContentLength > int64(MaxRecordSize) {
		return nil, fmt.Errorf("%w: answer of %d bytes", ErrMalformed, resp.ContentLength)
	}
	blob, err := io.ReadAll(io.LimitReader(resp.Body, int64(MaxRecordSize)+1))
	if err != nil {
		return nil, fmt.Errorf("directory: lookup: %w", err)
	}
	rec, err := VerifyRecord(blob, c.now())
	if err != nil {
		return nil, err
	}
	if rec.Peer != peer {
		return nil, fmt.Errorf("%w: asked for %s, got %s", ErrWrongPeer, peer.Short(), rec.Peer.Short())
	}
	return rec, nil
}

func readAPIError(resp *http.Response) error {
	e := &APIError{Status: resp.StatusCode}
	var body errorBody
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if json.Unmarshal(b, &body) == nil {
		e.Code, e.Message = body.Error.Code, body.Error.Message
		if len(e.Code) > 64 {
			e.Code = e.Code[:64]
		}
		if len(e.Message) > 200 {
			e.Message = e.Message[:200]
		}
	}
	return e
}

// drain reads a little of what is left so the connection can be reused,
// then closes the body.
func drain(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, maxErrorBody))
	_ = body.Close()
}
