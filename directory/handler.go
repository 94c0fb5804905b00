package directory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/store"
)

// Defaults for the zero fields of Config.
const (
	DefaultLookupRate    = 20.0 // lookups a second per client
	DefaultLookupBurst   = 40
	DefaultRegisterRate  = 1.0 // registrations a second per client
	DefaultRegisterBurst = 5
	DefaultMaxClients    = 100000
	DefaultSweepInterval = time.Minute
	DefaultStoreTimeout  = 5 * time.Second
)

// Config configures a Handler. The zero value takes every default.
type Config struct {
	// Now is the clock (default time.Now); tests inject one.
	Now func() time.Time
	// LookupRate and LookupBurst bound GET requests per client (an IPv4
	// address or an IPv6 /64): a token bucket of LookupBurst tokens
	// refilled at LookupRate a second.
	LookupRate  float64
	LookupBurst int
	// RegisterRate and RegisterBurst bound PUT requests per client.
	RegisterRate  float64
	RegisterBurst int
	// MaxClients bounds the clients each rate limiter remembers.
	MaxClients int
	// SweepInterval is how often Serve deletes expired records.
	SweepInterval time.Duration
	// StoreTimeout bounds each store call.
	StoreTimeout time.Duration
	// Logger receives refused requests at debug level and store failures
	// at warn level (default: discard).
	Logger *slog.Logger
}

// Handler serves the directory API (docs/HTTP.md, "Directory API") over a
// store.Directory. It keeps no state but its rate limiters, so several
// handlers, in one process or many, can share one store. Safe for
// concurrent use; make it with NewHandler.
type Handler struct {
	dir      store.Directory
	cfg      Config
	lookup   *limiter
	register *limiter
}

// NewHandler returns a Handler over dir.
func NewHandler(dir store.Directory, cfg Config) (*Handler, error) {
	if dir == nil {
		return nil, errors.New("directory: no store")
	}
	if cfg.LookupRate < 0 || cfg.LookupBurst < 0 || cfg.RegisterRate < 0 || cfg.RegisterBurst < 0 ||
		cfg.MaxClients < 0 || cfg.SweepInterval < 0 || cfg.StoreTimeout < 0 {
		return nil, errors.New("directory: config values must not be negative")
	}
	def := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	defInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&cfg.LookupRate, DefaultLookupRate)
	def(&cfg.RegisterRate, DefaultRegisterRate)
	defInt(&cfg.LookupBurst, DefaultLookupBurst)
	defInt(&cfg.RegisterBurst, DefaultRegisterBurst)
	defInt(&cfg.MaxClients, DefaultMaxClients)
	if cfg.SweepInterval == 0 {
		cfg.SweepInterval = DefaultSweepInterval
	}
	if cfg.StoreTimeout == 0 {
		cfg.StoreTimeout = DefaultStoreTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{
		dir:      dir,
		cfg:      cfg,
		lookup:   newLimiter(cfg.LookupRate, cfg.LookupBurst, cfg.MaxClients),
		register: newLimiter(cfg.RegisterRate, cfg.RegisterBurst, cfg.MaxClients),
	}, nil
}

// Error codes of the JSON error body, stable for clients.
const (
	CodeBadPeerID        = "bad_peer_id"
	CodeUnsupportedMedia = "unsupported_media_type"
	CodeTooLarge         = "too_large"
	CodeMalformed        = "malformed_record"
	CodeExpired          = "expired_record"
	CodeNotYetValid      = "not_yet_valid"
	CodeBadSignature     = "bad_signature"
	CodePeerMismatch     = "peer_mismatch"
	CodeStale            = "stale_record"
	CodeNotFound         = "not_found"
	CodeMethod           = "method_not_allowed"
	CodeRateLimited      = "rate_limited"
	CodeUnavailable      = "unavailable"
	CodeStoreFull        = "store_full"
	CodeInternal         = "internal"
)

const (
	recordsPrefix = "/v1/records/"
	contentBlob   = "application/octet-stream"
)

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	switch {
	case r.URL.Path == "/healthz":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			methodNotAllowed(w, "GET, HEAD")
			return
		}
		h.healthz(w, r)
	case strings.HasPrefix(r.URL.Path, recordsPrefix):
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			h.get(w, r)
		case http.MethodPut:
			h.put(w, r)
		default:
			methodNotAllowed(w, "GET, HEAD, PUT")
		}
	default:
		writeError(w, http.StatusNotFound, CodeNotFound, "no such endpoint")
	}
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	writeError(w, http.StatusMethodNotAllowed, CodeMethod, "method not allowed; allowed: "+allow)
}

// clientAddr is the request's peer address. Behind a reverse proxy every
// request comes from the proxy: the directory does not trust forwarding
// headers (docs/HTTP.md).
func clientAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr()
}

func peerFromPath(w http.ResponseWriter, r *http.Request) (cryptosuite.PeerID, bool) {
	p, err := cryptosuite.ParsePeerID(strings.TrimPrefix(r.URL.Path, recordsPrefix))
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeBadPeerID, "the path must be /v1/records/ and a peer ID of 64 hex characters")
		return p, false
	}
	return p, true
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	if !h.lookup.allow(clientAddr(r), h.cfg.Now()) {
		rateLimited(w)
		return
	}
	peer, ok := peerFromPath(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.StoreTimeout)
	defer cancel()
	rec, err := h.dir.GetDirectoryRecord(ctx, peer, h.cfg.Now())
	if err != nil {
		h.storeError(w, err, "lookup")
		return
	}
	w.Header().Set("Content-Type", contentBlob)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", fmt.Sprint(len(rec.Blob)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(rec.Blob)
	}
}

// registered is the body of a successful registration.
type registered struct {
	Peer    cryptosuite.PeerID `json:"peer"`
	Issued  time.Time          `json:"issued"`
	Expires time.Time          `json:"expires"`
}

func (h *Handler) put(w http.ResponseWriter, r *http.Request) {
	now := h.cfg.Now()
	if !h.register.allow(clientAddr(r), now) {
		rateLimited(w)
		return
	}
	peer, ok := peerFromPath(w, r)
	if !ok {
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != contentBlob {
		writeError(w, http.StatusUnsupportedMediaType, CodeUnsupportedMedia, "the body must be the record blob as "+contentBlob)
		return
	}
	if r.ContentLength > int64(MaxRecordSize) {
		writeError(w, http.StatusRequestEntityTooLarge, CodeTooLarge, fmt.Sprintf("a record is at most %d bytes", MaxRecordSize))
		return
	}
	blob, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(MaxRecordSize)))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, CodeTooLarge, fmt.Sprintf("a record is at most %d bytes", MaxRecordSize))
			return
		}
		writeError(w, http.StatusBadRequest, CodeMalformed, "reading the body failed")
		return
	}
	rec, err := VerifyRecord(blob, now)
	if err != nil {
		h.cfg.Logger.Debug("directory: registration refused", "client", clientAddr(r), "err", err)
		switch {
		case errors.Is(err, ErrBadSignature):
			writeError(w, http.StatusForbidden, CodeBadSignature, "the record's signature does not verify under its identity key")
		case errors.Is(err, ErrExpired):
			writeError(w, http.StatusBadRequest, CodeExpired, "the record has expired")
		case errors.Is(err, ErrNotYetValid):
			writeError(w, http.StatusBadRequest, CodeNotYetValid, "the record is issued too far in the future; check the clock")
		default:
			writeError(w, http.StatusBadRequest, CodeMalformed, "the record breaks a rule of its layout")
		}
		return
	}
	if rec.Peer != peer {
		writeError(w, http.StatusForbidden, CodePeerMismatch, "the record is for another peer ID than the path names")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.StoreTimeout)
	defer cancel()
	if err := h.dir.PutDirectoryRecord(ctx, rec.StoreRecord(), now); err != nil {
		h.storeError(w, err, "registration")
		return
	}
	writeJSON(w, http.StatusOK, registered{Peer: rec.Peer, Issued: rec.Issued, Expires: rec.Expires})
}

func (h *Handler) healthz(w http.ResponseWriter, r *http.Request) {
	if !h.lookup.allow(clientAddr(r), h.cfg.Now()) {
		rateLimited(w)
		return
	}
	// A lookup of a peer ID nobody has (its SPKI would hash to all ones)
	// reaches the store without finding anything.
	var probe cryptosuite.PeerID
	for i := range probe {
		probe[i] = 0xff
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.StoreTimeout)
	defer cancel()
	if _, err := h.dir.GetDirectoryRecord(ctx, probe, h.cfg.Now()); err != nil && !errors.Is(err, store.ErrNotFound) {
		h.storeError(w, err, "health check")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// storeError answers a store failure. Details stay in the log.
func (h *Handler) storeError(w http.ResponseWriter, err error, what string) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, CodeNotFound, "no unexpired record for this peer")
	case errors.Is(err, store.ErrStale):
		writeError(w, http.StatusConflict, CodeStale, "the directory holds a record issued at the same time or later")
	case errors.Is(err, store.ErrTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, CodeTooLarge, "the record is over the store's bound")
	case errors.Is(err, store.ErrFull):
		h.cfg.Logger.Warn("directory: store full", "op", what, "err", err)
		w.Header().Set("Retry-After", "60")
		writeError(w, http.StatusServiceUnavailable, CodeStoreFull, "the directory is full; try again later")
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		h.cfg.Logger.Warn("directory: store unavailable", "op", what, "err", err)
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "the directory's store is unavailable; try again later")
	default:
		h.cfg.Logger.Warn("directory: store failed", "op", what, "err", err)
		writeError(w, http.StatusInternalServerError, CodeInternal, "internal error")
	}
}

func rateLimited(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "1")
	writeError(w, http.StatusTooManyRequests, CodeRateLimited, "too many requests from this address; slow down")
}

// errorBody is every error's JSON body: {"error":{"code":...,"message":...}}.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, errorBody{Error: errorDetail{Code: code, Message: msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // only fixed types are written
		panic(err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// Server timeouts and header bound of Serve.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 10 * time.Second
	idleTimeout       = 60 * time.Second
	maxHeaderBytes    = 8 << 10
	shutdownTimeout   = 5 * time.Second
)

// Serve serves h on ln until ctx is done, sweeping expired records every
// Config.SweepInterval, then shuts down gracefully (at most 5 s for the
// requests in flight) and returns nil. Any other failure to serve is
// returned. ln is closed when Serve returns.
func (h *Handler) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(h.cfg.Logger.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	done := make(chan struct{})
	sweepDone := make(chan struct{})
	go func() {
		defer close(sweepDone)
		h.sweepLoop(done)
	}()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	var err error
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
		if srv.Shutdown(sctx) != nil {
			_ = srv.Close()
		}
		cancel()
		<-serveErr
	case err = <-serveErr:
		_ = srv.Close()
	}
	close(done)
	<-sweepDone
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func (h *Handler) sweepLoop(done <-chan struct{}) {
	t := time.NewTicker(h.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			h.Sweep(context.Background())
		}
	}
}

// Sweep deletes the records expired now and returns how many it deleted.
// Serve calls it periodically; several directory instances sweeping one
// store is harmless.
func (h *Handler) Sweep(ctx context.Context) int {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.StoreTimeout)
	defer cancel()
	n, err := h.dir.SweepDirectory(ctx, h.cfg.Now())
	if err != nil {
		h.cfg.Logger.Warn("directory: sweep failed", "err", err)
	}
	return n
}
