package canon

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/examples.txt")

func seq(n int, start byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

type example struct {
	purpose string
	label   string
	signed  bool // also show the signature input
	layout  []byte
}

// examples holds one exact byte example per purpose whose field order is
// fixed today; the curl walkthrough checks the same file.
func examples() []example {
	var room [16]byte
	var member, kp, sender [32]byte
	copy(room[:], seq(16, 0x10))
	copy(member[:], seq(32, 0x40))
	copy(kp[:], seq(32, 0x80))
	copy(sender[:], seq(32, 0xc0))
	var sid [16]byte
	var th [32]byte
	copy(sid[:], seq(16, 0xa0))
	copy(th[:], seq(32, 0xe0))
	msg := RoomMessageHeader{Room: room, Epoch: 2, CommitHash: th, Sender: sender, KeyPackageHash: kp}
	copy(msg.MessageID[:], seq(16, 0x70))
	hello := &RequestorHelloFields{Version: 1, Transport: "tcp", ChannelBinding: seq(32, 0x01), Requestor: sender,
		Responder: member[:], IdentityKey: seq(44, 0x30), SigAlg: 2, KEX: 1, Share: seq(32, 0x50),
		AEADs: []uint16{1, 2, 3}, Nonce: seq(32, 0x60), TimeMillis: 1764036000000}
	reply := &ResponderHelloFields{RequestorHelloHash: th, RequestorSig: seq(64, 0x90), SessionID: sid[:],
		Responder: member, IdentityKey: seq(44, 0xb0), SigAlg: 2, KEX: 1, Share: seq(32, 0xd0), AEAD: 1,
		Nonce: seq(32, 0xf0), TimeMillis: 1764036000123}
	return []example{
		{"handshake: the requestor's hello (signed)", LabelRequestorHello, true, RequestorHello(hello)},
		{"handshake: the responder's hello (signed; SHA-256 of it is the transcript hash)", LabelResponderHello, true,
			ResponderHello(reply)},
		{"handshake: AAD of the sealed authentication key", LabelAuthKeySealAAD, false, AuthKeySealAAD(th, sid[:])},
		{"handshake: the requestor's Finished MAC input", LabelRequestorFinished, false,
			RequestorFinished(th, seq(64, 0x20), seq(96, 0x40), kp)},
		{"room key wrap info (HPKE info and A256CBC-HS512 AAD)", LabelRoomKeyWrap, false,
			RoomKeyWrapInfo(room, 3, member, kp)},
		{"wrapped key tuple (signed by the master)", LabelWrappedKey, true,
			WrappedKeyTuple(room, 3, member, kp, seq(32, 0x20), seq(8, 0x30))},
		{"per-sender key (HKDF info)", LabelSenderKey, false,
			SenderKeyInfo(room, 3, sender)},
		// As the headers carry them: the session id in 32 hex characters,
		// a 16-byte nonce in hex (openssl rand -hex 16), the body
		// {"epoch":3} acknowledging epoch 3 of the room.
		{"HTTP request MAC input", LabelHTTPRequest, false,
			HTTPRequest(hex.EncodeToString(sid[:]), "POST", "/v1/rooms/"+hex.EncodeToString(room[:])+"/acks",
				fmt.Sprintf("%x", sha256.Sum256([]byte(`{"epoch":3}`))), "1764036000000", hex.EncodeToString(seq(16, 0x70)))},
		{"direct message AAD", LabelDirectMessageAAD, false,
			DirectMessageAAD(sid, 1, 41, 2)},
		{"rekey hash input (SHA-256 salts the new epoch's HKDF-Extract)", LabelRekey, false,
			Rekey(th, 2, seq(32, 0x20), seq(32, 0x60))},
		{"rekey confirmation MAC input", LabelRekeyConfirm, false,
			RekeyConfirm("responder", th, 2)},
		{"key package (signed by the owner's identity key)", LabelKeyPackage, true,
			KeyPackage(&KeyPackageFields{
				IdentityKey: seq(44, 0x01), KEM: 0x0020, HPKEPublicKey: seq(32, 0x20), SigningKey: seq(32, 0x60),
				CreatedMillis: 1764036000000, ExpiresMillis: 1766628000000,
			})},
		{"room commit, create (signed by the master)", LabelRoomCommit, true,
			RoomCommit(&RoomCommitFields{
				Room: room, Epoch: 1, Operation: 1, Name: "lab", AEAD: 0x0001, Master: member,
				Members: []RoomCommitMember{{Peer: member, KeyPackageHash: kp}}, TimeMillis: 1764036000000,
			})},
		{"room commit, invite (signed by the master)", LabelRoomCommit, true,
			RoomCommit(&RoomCommitFields{
				Room: room, Epoch: 2, Previous: th[:], Operation: 2, Name: "lab", AEAD: 0x0001, Master: member,
				Members:    []RoomCommitMember{{Peer: member, KeyPackageHash: kp}, {Peer: sender, KeyPackageHash: th}},
				TimeMillis: 1764036060000,
			})},
		{"room message AAD", LabelRoomMessageAAD, false,
			RoomMessageAAD(&msg)},
		{"room message (signed with the sender's message-signing key)", LabelRoomMessage, true,
			RoomMessage(&msg, seq(8, 0x30))},
		{"room leave request (signed by the member's identity key)", LabelRoomLeave, true,
			RoomLeave(room, sender, 2, 1764036120000)},
		{"LAN announcement (signed by the identity key; addresses 192.0.2.7:7000, [::]:7000, https 192.0.2.7:8080)",
			LabelAnnounce, true, Announce(member, sid,
				[][]byte{append(append(make([]byte, 10), 0xff, 0xff, 192, 0, 2, 7), 0x1b, 0x58), append(make([]byte, 16), 0x1b, 0x58)},
				[][]byte{append(append(make([]byte, 10), 0xff, 0xff, 192, 0, 2, 7), 0x1f, 0x90)},
				"https", "lab printer", 30000, 1764036000000)},
		{"directory record (signed by the peer's identity key)", LabelDirectoryRecord, true,
			DirectoryRecord(&DirectoryRecordFields{
				Peer: member, IdentityKey: seq(44, 0x30), TCPAddrs: []string{"192.0.2.7:7450", "[2001:db8::7]:7450"},
				HTTPAddrs: []string{"https://192.0.2.7:7451"}, IssuedMillis: 1764036000000, ExpiresMillis: 1764039600000,
			})},
	}
}

func render(exs []example) []byte {
	var b bytes.Buffer
	b.WriteString("# One exact byte example per canonical layout (DESIGN.md §11).\n")
	b.WriteString("# Generated by `go test ./canon -run TestExamples -update`; checked by that test.\n")
	b.WriteString("# layout = label ‖ 0x00 ‖ each field as 4-byte big-endian length ‖ bytes.\n")
	b.WriteString("# sig_input = 64 × 0x20 ‖ label ‖ 0x00 ‖ SHA-256(layout).\n")
	for _, e := range exs {
		fmt.Fprintf(&b, "\npurpose=%s\nlabel=%s\nlayout=%x\n", e.purpose, e.label, e.layout)
		if e.signed {
			in, err := SignatureInput(e.label, e.layout)
			if err != nil {
				panic(err)
			}
			fmt.Fprintf(&b, "sig_input=%x\n", in)
		}
	}
	return b.Bytes()
}

func TestExamples(t *testing.T) {
	path := filepath.Join("testdata", "examples.txt")
	got := render(examples())
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("canonical layouts changed; if on purpose, run go test ./canon -update and update PROTOCOL.md\n got:\n%s", got)
	}
	// Every layout in the file parses back with its own label.
	for _, e := range examples() {
		r := NewReader(e.label, e.layout)
		for r.Err() == nil && len(r.b) > 0 {
			r.Bytes()
		}
		if err := r.Done(); err != nil {
			t.Errorf("%s: %v", e.purpose, err)
		}
	}
}
