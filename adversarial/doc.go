// Package adversarial holds lanpeer's adversarial test suite (issue 8): each
// attack of docs/SECURITY.md against a real peer (node.Listen on loopback,
// TLS and yamux, and the HTTP shim over the same Service), asserting both the attack's typed rejection and that an
// honest client is served by the same peer at the same time. Run it with
//
//	go test -race ./adversarial -run Adversarial
//
// The package has no code outside its tests.
package adversarial
