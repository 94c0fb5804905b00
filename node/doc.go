// Package node is the peer's TCP transport (DESIGN.md §3;
// docs/PROTOCOL.md, "17. Transport"): a [Server] that accepts sessions and
// [Dial] that opens them, each session a [Conn] whose multiplexed
// [Stream]s carry frames.
//
// A session is built in this order, on both sides under one deadline
// ([Config].HandshakeTimeout): TCP; TLS 1.3 with a self-signed certificate
// made from the identity key, each side checking the other's key (the
// dialer against the pinned peer ID or known_peers, before it sends its
// own certificate); the lanpeer handshake of package session in frames on
// the TLS connection, bound to it by the TLS exporter, with the rule that
// each side's handshake identity is its certificate's key; and only then
// yamux. An unauthenticated peer never reaches the multiplexer.
//
// # Listening
//
// What `lanpeer listen --tcp ADDR` does:
//
//	srv, err := node.Listen(addr, &node.Config{
//		Identity: id,
//		Handlers: map[node.StreamKind]node.Handler{node.KindDirect: direct},
//		Allow:    allowed, // --allow; empty: everyone
//		Logger:   logger,
//	})
//	if err != nil { ... }
//	fmt.Fprintln(stderr, "lanpeer: listening on", srv.Addr())
//	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
//	defer stop()
//	return srv.Serve(ctx) // nil after SIGINT/SIGTERM: stopped, drained
//
// [Server.Sessions] lists the sessions (to push `@PEERID text` to one:
// [Conn.OpenStream] with [KindDirect]); [Config].OnSession announces each
// new one; [Conn.Done] tells when one ends.
//
// # Dialing
//
// What `lanpeer dial [--kex M] TARGET ...` does:
//
//	kp, err := session.LoadKnownPeers(filepath.Join(home, session.KnownPeersFile))
//	c, err := node.Dial(ctx, target, &node.Config{
//		Identity: id,
//		KEX:      kex,     // --kex; cryptosuite.KEXByCLIName
//		AllowRSA: rsa,     // the rsa mode must be enabled on both sides
//		Trust:    kp,      // trust on first use for HOST:PORT targets
//		Handlers: map[node.StreamKind]node.Handler{node.KindDirect: incoming},
//	})
//	if err != nil { ... } // see Errors
//	defer c.Close()
//	s, err := c.OpenStream(ctx, node.KindDirect)
//	...
//	<-c.Done() // interactive: until the server goes away
//
// TARGET is HOST:PORT (trust on first use) or PEERID@HOST:PORT (pinned);
// see [ParseTarget] and [Dial].
//
// # Streams
//
// Every stream starts with a StreamOpen naming its kind
// (docs/PROTOCOL.md, "13. Streams"), and node enforces who may open what:
// [KindDirect] either side, once each per session (direct messages, one
// way: session.DirectSender on the opener's side, session.DirectReceiver
// in the acceptor's handler); [KindControl] the requestor, once (the
// rekey exchange of session.Rekey, in both directions: open it right
// after Dial, serve it on the listening side); [KindNotify] the responder
// (pushes); [KindRequest] the requestor (one request, one response).
// [Stream.ReadFrame] and [Stream.WriteFrame] move frame payloads, each
// one wire message (wire.Encode, wire.Decode).
//
// # Rooms
//
// A [Service] is the one place where room operations happen (DESIGN.md
// §1; docs/PROTOCOL.md, "18. Room operations"): it applies room.Host's
// rules over a store.Store, with the caller each front end authenticated,
// and pushes what changed to connected members. [Service.Configure] makes
// a Config serve it: the [KindRequest] handler, OnSession for pushes on
// [KindNotify] streams, and a request frame that fits a commit.
//
//	svc, err := node.NewService(node.ServiceConfig{Store: st})
//	svc.Configure(cfg)           // before node.Listen(addr, cfg)
//	defer svc.Close()
//
// The dialing side uses a [RoomClient] for the requests and a [Pushes]
// handler for the notify streams.
//
// Several Services, in several processes, may share one store (one
// database) and serve the same rooms: with ServiceConfig.PollInterval
// each polls the store and pushes to its own members what the others
// stored, each message once (poll.go says what propagates and what does
// not).
//
// # Direct messages and rekey
//
// [Messaging] runs both on every session, as `lanpeer listen` and
// `lanpeer dial` use it:
//
//	msg := node.NewMessaging(node.DirectConfig{
//		OnMessage: func(r node.Received) { ... }, // r.From, r.Text, in order per session
//		Rekey:     session.RekeyPolicy{},         // --rekey-messages, --rekey-interval
//	})
//	cfg.Handlers = msg.Handlers()          // KindDirect and KindControl, both roles
//	c, err := node.Dial(ctx, target, cfg)  // or the listening side's sessions
//	m, err := msg.Attach(c)                // the requestor's control stream opens now
//	err = m.Send(ctx, "hello")             // this side's direct stream, opened once
//	err = m.Finish(ctx)                    // nil once the peer has read every message
//	c.Close(); msg.Wait()
//
// A message that does not open, a failed rekey, or a rekey flight that
// stalls past DirectConfig.RekeyTimeout closes the session; the error is
// logged at warn level and returned by [Messenger.Err].
//
// # Flags
//
// Every limit is a [Config] field whose zero value is the default; the
// CLI exposes them as flags:
//
//	--tls=false                 Insecure (debugging only; logged as a warning)
//	--allow PEERID (repeated)   Allow
//	--kex MODE, --allow-rsa     KEX, AllowRSA
//	--handshake-timeout D       HandshakeTimeout       (10s)
//	--handshake-rate N          HandshakeRate          (20 per second per address; negative: off)
//	--handshake-burst N         HandshakeBurst         (10)
//	--max-pending N             MaxPendingHandshakes   (128)
//	--max-sessions N            MaxSessions            (4096)
//	--max-sessions-per-peer N   MaxSessionsPerPeer     (16; negative: off)
//	--max-sessions-per-addr N   MaxSessionsPerAddr     (64; negative: off)
//	--max-streams N             MaxStreams             (64)
//	--max-frame BYTES           MaxControlFrame        (65536)
//	--max-request-frame BYTES   MaxRequestFrame        (131072; Service.Configure raises it to fit a commit)
//	--drain-timeout D           DrainTimeout           (5s)
//	--rekey-messages N          DirectConfig.Rekey.AfterMessages (1048576)
//	--rekey-interval D          DirectConfig.Rekey.AfterTime     (1h)
//
// A "remote address" is an IPv4 address or an IPv6 /64. [Server.Stats]
// counts every refusal, one counter per limit.
//
// # Errors
//
// Dial's errors name what to do: a [*PeerMismatchError] (the pinned ID is
// not who answers), a *session.KeyChangedError (known_peers records
// another key for the address; its text says how to resolve it),
// [ErrClosedByServer] (refused at accept: a rate or connection limit), a
// *session.PeerError (the server refused the handshake; its Code says
// why: policy for the allow list, busy for too many sessions of this
// identity), [ErrHandshakeTimeout], and the session package's own
// (session.ErrKEXRefused for the rsa mode with an Ed25519 identity).
// Every error matches with errors.Is / errors.As through the wrapping.
//
// On a stream, [Stream.ReadFrame] returns a [*StreamError] when the other
// side refused the stream or failed a request: busy (more streams than it
// accepts), protocol (a kind it does not serve), too-large, timeout.
//
// The server logs refusals at debug level (a peer can cause them at will)
// with the limit's typed error ([ErrRateLimited], [ErrTooManyPending],
// [ErrTooManySessions], [ErrTooManySessionsPerAddr],
// [ErrTooManySessionsPerPeer], [ErrTooManyStreams], ...).
//
// # Goroutines
//
// A Server runs one goroutine per handshake in progress; a Conn runs its
// accept loop, one goroutine per stream the other side opened, and
// yamux's. [Server.Close], [Server.Serve]'s return, [Conn.Close] and
// [Conn.Shutdown] wait for all of them, which is why a [Handler] must
// return once its context is done or its stream fails. Conn.Close must not
// be called from a handler of the same Conn (it would wait for itself);
// return from the handler instead, or close from another goroutine.
package node
