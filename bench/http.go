package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/httpshim"
	"github.com/lanpeer/lanpeer/room"
	"github.com/lanpeer/lanpeer/store"
)

// httpSenders is how many POSTs are in flight at once, each side.
const httpSenders = 8

// HTTP measures authenticated message POSTs per second through the HTTP
// shim (listen --http) with keep-alive: the request's MAC check, the JSON
// decode, the room's rules (the message's signature verified), the store.
// 256 bytes of text, sealed beforehand; 8 requests in flight. Beside it, a
// bare net/http handler that reads the same body and does the same JSON
// decode, driven the same way over the same kind of client, in the same
// run (ratio_to_bare = requests_per_s / bare_per_s). The two alternate in
// rounds. host_verifies: whether the host verified the signatures
// (Options.SkipMessageSignatures).
func HTTP(ctx context.Context, o *Options) ([]Result, error) {
	h, err := startHost(ctx, o, nil, nil)
	if err != nil {
		return nil, err
	}
	defer h.close()
	// The request rate one benchmarking client would hit is lifted (the
	// replay window, 4,096 nonces per session, bounds no rate).
	shim, err := httpshim.New(httpshim.Config{Service: h.svc, Identity: h.id, Rate: -1, HandshakeRate: -1})
	if err != nil {
		return nil, err
	}
	hs := shim.HTTPServer()
	shimURL, stopShim, err := serveHTTP(hs)
	if err != nil {
		shim.Close()
		return nil, err
	}
	defer func() {
		shim.Close()
		stopShim()
	}()
	bare := &http.Server{Handler: http.HandlerFunc(bareMessageHandler), ReadHeaderTimeout: 5 * time.Second}
	bareURL, stopBare, err := serveHTTP(bare)
	if err != nil {
		return nil, err
	}
	defer stopBare()

	transport := &http.Transport{MaxIdleConnsPerHost: httpSenders, MaxConnsPerHost: httpSenders, DisableCompression: true}
	defer transport.CloseIdleConnections()
	hc := &http.Client{Transport: transport, Timeout: hang}

	id, err := cryptosuite.GenerateIdentity(cryptosuite.KeyEd25519)
	if err != nil {
		return nil, err
	}
	c := &httpshim.Client{BaseURL: shimURL, HTTPClient: hc, Identity: id, Expected: h.id.PeerID()}
	cctx, cancel := context.WithTimeout(ctx, hang)
	defer cancel()
	if err := c.Handshake(cctx); err != nil {
		return nil, fmt.Errorf("bench: http handshake: %w", err)
	}
	defer c.Close(context.Background())
	secrets, err := room.GenerateKeyPackage(id, 0, time.Now(), 0)
	if err != nil {
		return nil, err
	}
	if err := c.PublishKeyPackage(cctx, secrets.KeyPackage().Blob()); err != nil {
		return nil, err
	}
	prop, err := room.NewRoom(room.RoomConfig{Master: id, KeyPackage: secrets.KeyPackage(), Name: "bench", Now: time.Now()})
	if err != nil {
		return nil, err
	}
	if err := c.Propose(cctx, prop); err != nil {
		return nil, err
	}
	st, err := room.NewMemberState(prop.Commit, id.Public(), id.PeerID(), nil)
	if err != nil {
		return nil, err
	}
	if err := openOwnKey(st, prop, &client{id: id, secrets: secrets}); err != nil {
		return nil, err
	}
	roomID := store.RoomID(prop.Info.Room)
	text := strings.Repeat("x", 256)

	per := o.duration() / relayRounds
	var shimN, bareN, errs int64
	var shimT, bareT time.Duration
	for range relayRounds {
		// Sealed beforehand, enough for the round at 10,000 requests/s.
		pool := make([][]byte, max(int(per.Seconds()*10_000), 100))
		for i := range pool {
			var mid [room.MessageIDSize]byte
			fillRandom(mid[:])
			if pool[i], err = st.SealMessage(secrets, text, mid); err != nil {
				return nil, err
			}
		}
		n, e, d := postLoop(ctx, o, per, len(pool), func(i int) error {
			_, err := c.Send(ctx, roomID, pool[i])
			return err
		})
		shimN, errs, shimT = shimN+n, errs+e, shimT+d
		body, _ := json.Marshal(map[string][]byte{"message": pool[0]})
		n, e, d = postLoop(ctx, o, per, 1<<30, func(int) error { return postBare(ctx, hc, bareURL, body) })
		bareN, errs, bareT = bareN+n, errs+e, bareT+d
	}
	shimRate, bareRate := float64(shimN)/shimT.Seconds(), float64(bareN)/bareT.Seconds()
	return []Result{{
		{"size", len(text)},
		{"requests_per_s", shimRate},
		{"bare_per_s", bareRate},
		{"ratio_to_bare", ratio(shimRate, bareRate)},
		{"host_verifies", !o.SkipMessageSignatures},
		{"errors", errs},
	}}, nil
}

// serveHTTP serves srv on a loopback port and returns its URL and how to
// stop it.
func serveHTTP(srv *http.Server) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	return "http://" + ln.Addr().String(), func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if srv.Shutdown(sctx) != nil {
			srv.Close()
		}
		<-done
	}, nil
}

// postLoop runs post with httpSenders goroutines for d or until limit
// calls, and returns the calls that succeeded, those that failed, and the
// time taken.
func postLoop(ctx context.Context, o *Options, d time.Duration, limit int, post func(i int) error) (int64, int64, time.Duration) {
	var next, ok, failed atomic.Int64
	var firstErr atomic.Value
	defer func() {
		if err, _ := firstErr.Load().(error); err != nil {
			o.logger().Warn("http: a request failed", "err", err)
		}
	}()
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for range httpSenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && time.Now().Before(deadline) {
				i := next.Add(1) - 1
				if i >= int64(limit) {
					return
				}
				if err := post(int(i)); err != nil {
					if failed.Add(1) == 1 {
						firstErr.Store(err)
					}
					if failed.Load() > 100 {
						return
					}
					continue
				}
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	return ok.Load(), failed.Load(), time.Since(start)
}

// bareMessageHandler reads a message POST's body within the shim's bound
// and decodes it as the shim does ({"message": base64}, nothing else),
// then answers as the shim does.
func bareMessageHandler(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, httpshim.MaxBody))
	if err != nil {
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		return
	}
	var v struct {
		Message []byte `json:"message"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil || len(v.Message) == 0 {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"seq":1,"stored":1}` + "\n"))
}

func postBare(ctx context.Context, hc *http.Client, url string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/rooms/x/messages", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New("bench: the bare handler answered " + resp.Status)
	}
	return nil
}
