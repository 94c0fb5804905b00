// Package httpshim is lanpeer's HTTP front end (DESIGN.md §7,
// docs/HTTP.md): the handshake in two round trips, then every room
// operation as JSON, each request authenticated by an HMAC under the
// session's authentication key; long polls and Server-Sent Events for
// delivery; /healthz and Prometheus /metrics.
//
// It holds no business logic: a request becomes the TCP protocol's
// request and runs through node.Service, the same Service the TCP front
// end uses, with the peer the request authenticated. Client is the Go
// side of the API.
package httpshim
