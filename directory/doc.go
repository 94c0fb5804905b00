// Package directory is lanpeer's lookup server beyond the LAN (DESIGN.md §8):
// peers register signed, expiring records of their addresses and look each
// other up by peer ID.
//
// # Records
//
// A [Record] is a signed blob (docs/PROTOCOL.md §16.1 framing) whose layout
// is canon.DirectoryRecord under the label "lanpeer/v1 directory record": the
// peer ID, the identity key (SPKI DER), the TCP and HTTP addresses, the
// issue time and the expiry. The record carries the key that verifies it and
// the peer ID is that key's SHA-256, so nobody can make a record for a peer
// ID whose key they do not hold. [BuildRecord] makes one; [VerifyRecord]
// checks one, signature first and fields after. The blob travels unchanged
// from the peer through the directory to whoever looks it up.
//
// # Server and client
//
// [NewHandler] serves the HTTP API of docs/HTTP.md ("Directory API") over a
// store.Directory and keeps no other state, so several instances can share
// one database. The directory is not trusted: [Client.Lookup] verifies the
// blob itself and refuses a record for another peer or one that expired.
package directory
