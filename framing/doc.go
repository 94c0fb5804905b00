// Package framing reads and writes lanpeer's length-prefixed frames
// (docs/PROTOCOL.md, "Framing"; DESIGN.md §3).
//
// A frame is a 4-byte big-endian length N followed by N bytes of payload.
// Every frame holds exactly one message, so N is at least 1. Each [Reader]
// and [Writer] has a hard maximum N chosen by the stream class it serves;
// a declared length above it is refused with a [*FrameTooLargeError] before
// anything is allocated for it.
//
// # Stream classes
//
// The maximum is a property of the stream, not of the message, so that a
// chat frame never gets a limit sized for another use:
//
//   - control streams (the handshake on the TLS connection, requests,
//     responses and notifications on yamux streams): [MaxControlFrame],
//     64 KiB.
//
// Later stream classes (bulk transfers) name their own maximum, which is
// never above [MaxFrameCeiling].
//
// # Errors
//
//   - io.EOF from [Reader.ReadFrame]: the stream ended cleanly at a frame
//     boundary.
//   - an error wrapping io.ErrUnexpectedEOF: the stream ended inside a
//     header or a payload.
//   - [*FrameTooLargeError]: a frame longer than the maximum (read or
//     written).
//   - [ErrEmptyFrame]: a zero-length frame (read or written).
//
// After any error a Reader or Writer is out of step with its stream and
// returns the same error from then on; close the stream.
package framing
