package canon

// Layouts whose field order DESIGN.md fixes. Each later purpose (handshake
// transcript, key package, commit, message, announcement, directory record)
// adds its function here, beside its exact byte example in testdata.

// RoomKeyWrapInfo is the HPKE info of a room-key wrap and the AAD of its
// A256CBC-HS512 seal: room, epoch, member, key package hash.
func RoomKeyWrapInfo(room [16]byte, epoch uint64, member, keyPackageHash [32]byte) []byte {
	return New(LabelRoomKeyWrap).Bytes(room[:]).Uint64(epoch).Bytes(member[:]).Bytes(keyPackageHash[:]).Out()
}

// WrappedKeyTuple is what the master signs (label LabelWrappedKey) for each
// wrapped room key: room, epoch, member, key package hash, HPKE enc,
// ciphertext.
func WrappedKeyTuple(room [16]byte, epoch uint64, member, keyPackageHash [32]byte, enc, ciphertext []byte) []byte {
	return New(LabelWrappedKey).Bytes(room[:]).Uint64(epoch).Bytes(member[:]).Bytes(keyPackageHash[:]).
		Bytes(enc).Bytes(ciphertext).Out()
}

// SenderKeyInfo is the HKDF info of a per-sender message key: room, epoch,
// sender.
func SenderKeyInfo(room [16]byte, epoch uint64, sender [32]byte) []byte {
	return New(LabelSenderKey).Bytes(room[:]).Uint64(epoch).Bytes(sender[:]).Out()
}

// HTTPRequest is the MAC input of an authenticated HTTP request (DESIGN.md
// §7): session id, method, raw request target (path and query as sent), hex
// SHA-256 of the body, timestamp, nonce, each as the text that was sent.
func HTTPRequest(sessionID, method, target, bodySHA256Hex, timestamp, nonce string) []byte {
	return New(LabelHTTPRequest).String(sessionID).String(method).String(target).
		String(bodySHA256Hex).String(timestamp).String(nonce).Out()
}

// RequestorHelloFields are the fields of the requestor's hello as the
// transcript sees them. The requestor signs RequestorHello under
// LabelRequestorHello; the responder rebuilds it from its own view (its own
// channel binding and transport tag) before verifying.
type RequestorHelloFields struct {
	Version        uint64
	Transport      string // "tcp" (TLS), "tcp-notls" or "http"
	ChannelBinding []byte // 32-byte TLS exporter value, empty without TLS
	Requestor      [32]byte
	Responder      []byte // the peer ID the requestor means to reach; empty = not known yet
	IdentityKey    []byte // requestor SPKI DER
	SigAlg         uint16
	KEX            uint16
	Share          []byte
	AEADs          []uint16 // the whole offered list, in the requestor's order
	Nonce          []byte
	TimeMillis     uint64
}

// RequestorHello is the layout the requestor signs.
func RequestorHello(f *RequestorHelloFields) []byte {
	return New(LabelRequestorHello).Uint64(f.Version).String(f.Transport).Bytes(f.ChannelBinding).
		Bytes(f.Requestor[:]).Bytes(f.Responder).Bytes(f.IdentityKey).Uint16(f.SigAlg).Uint16(f.KEX).
		Bytes(f.Share).Uint16List(f.AEADs...).Bytes(f.Nonce).Uint64(f.TimeMillis).Out()
}

// ResponderHelloFields are the responder's fields. The first two bind the
// whole first flight: the SHA-256 of the requestor's layout and its
// signature.
type ResponderHelloFields struct {
	RequestorHelloHash [32]byte
	RequestorSig       []byte
	SessionID          []byte
	Responder          [32]byte
	IdentityKey        []byte // responder SPKI DER
	SigAlg             uint16
	KEX                uint16
	Share              []byte
	AEAD               uint16 // the chosen suite
	Nonce              []byte
	TimeMillis         uint64
}

// ResponderHello is the layout the responder signs; its SHA-256 is the
// transcript hash that salts the key schedule.
func ResponderHello(f *ResponderHelloFields) []byte {
	return New(LabelResponderHello).Bytes(f.RequestorHelloHash[:]).Bytes(f.RequestorSig).Bytes(f.SessionID).
		Bytes(f.Responder[:]).Bytes(f.IdentityKey).Uint16(f.SigAlg).Uint16(f.KEX).Bytes(f.Share).
		Uint16(f.AEAD).Bytes(f.Nonce).Uint64(f.TimeMillis).Out()
}

// AuthKeySealAAD is the associated data of the sealed authentication key:
// the transcript hash and the session id.
func AuthKeySealAAD(transcriptHash [32]byte, sessionID []byte) []byte {
	return New(LabelAuthKeySealAAD).Bytes(transcriptHash[:]).Bytes(sessionID).Out()
}

// RequestorFinished is the MAC input of the third flight: the transcript
// hash, the responder's signature, the sealed authentication key as it
// travelled, and the SHA-256 of the authentication key (proving the
// requestor opened it).
func RequestorFinished(transcriptHash [32]byte, responderSig, sealedAuthKey []byte, authKeyHash [32]byte) []byte {
	return New(LabelRequestorFinished).Bytes(transcriptHash[:]).Bytes(responderSig).Bytes(sealedAuthKey).
		Bytes(authKeyHash[:]).Out()
}

// DirectMessageAAD is the associated data of a direct message's seal: the
// session id, the direction tag of the sender (1 requestor to responder, 2
// responder to requestor), the message's sequence number and its key epoch.
func DirectMessageAAD(sessionID [16]byte, direction uint32, seq uint64, epoch uint32) []byte {
	return New(LabelDirectMessageAAD).Bytes(sessionID[:]).Uint64(uint64(direction)).Uint64(seq).
		Uint64(uint64(epoch)).Out()
}

// Rekey is the layout whose SHA-256, the rekey hash, salts the key schedule
// of a new epoch and takes the transcript hash's place for the next rekey:
// the previous epoch's hash (the handshake's transcript hash for epoch 1),
// the new epoch, the requestor's share and the responder's share, as they
// travelled.
func Rekey(previousHash [32]byte, epoch uint32, initShare, replyShare []byte) []byte {
	return New(LabelRekey).Bytes(previousHash[:]).Uint64(uint64(epoch)).Bytes(initShare).Bytes(replyShare).Out()
}

// RekeyConfirm is the MAC input of a rekey confirmation: the role of the
// side that confirms ("requestor" or "responder"), the new epoch's rekey
// hash and the epoch.
func RekeyConfirm(role string, rekeyHash [32]byte, epoch uint32) []byte {
	return New(LabelRekeyConfirm).String(role).Bytes(rekeyHash[:]).Uint64(uint64(epoch)).Out()
}

// KeyPackageFields are the fields of a key package (DESIGN.md §5), signed
// under LabelKeyPackage by the owner's identity key. The owner's peer ID is
// the SHA-256 of IdentityKey, so a key package names its owner and carries
// the key that verifies it.
type KeyPackageFields struct {
	IdentityKey   []byte // the owner's identity key, SPKI DER
	KEM           uint16 // HPKE KEM id of HPKEPublicKey
	HPKEPublicKey []byte // serialized as RFC 9180 SerializePublicKey
	SigningKey    []byte // Ed25519 message-signing public key, 32 bytes
	CreatedMillis uint64
	ExpiresMillis uint64
}

// KeyPackage is the layout of a key package: identity key, KEM id, HPKE
// public key, message-signing key, created, expires.
func KeyPackage(f *KeyPackageFields) []byte {
	return New(LabelKeyPackage).Bytes(f.IdentityKey).Uint16(f.KEM).Bytes(f.HPKEPublicKey).Bytes(f.SigningKey).
		Uint64(f.CreatedMillis).Uint64(f.ExpiresMillis).Out()
}

// RoomCommitMember is one entry of a commit's member list: the member and
// the hash of the key package the epoch's room key was wrapped to. In the
// layout it is one list element of 64 bytes, Peer ‖ KeyPackageHash.
type RoomCommitMember struct {
	Peer           [32]byte
	KeyPackageHash [32]byte
}

// RoomCommitFields are the fields of a room commit (DESIGN.md §5), signed
// under LabelRoomCommit by the master's identity key.
type RoomCommitFields struct {
	Room       [16]byte
	Epoch      uint64
	Previous   []byte // the previous commit's hash, 32 bytes; empty for create
	Operation  uint16
	Name       string
	AEAD       uint16
	Master     [32]byte
	Members    []RoomCommitMember // the whole member list after the commit, master included
	TimeMillis uint64
}

// RoomCommit is the layout of a commit: room, epoch, previous commit hash
// (absent for create), operation, name, AEAD suite, master, member list,
// time.
func RoomCommit(f *RoomCommitFields) []byte {
	elems := make([][]byte, len(f.Members))
	flat := make([]byte, 64*len(f.Members))
	for i, m := range f.Members {
		e := flat[64*i : 64*i+64 : 64*i+64]
		copy(e, m.Peer[:])
		copy(e[32:], m.KeyPackageHash[:])
		elems[i] = e
	}
	return New(LabelRoomCommit).Bytes(f.Room[:]).Uint64(f.Epoch).Bytes(f.Previous).Uint16(f.Operation).
		String(f.Name).Uint16(f.AEAD).Bytes(f.Master[:]).List(elems...).Uint64(f.TimeMillis).Out()
}

// RoomMessageHeader are the fields of a room message that its associated
// data binds and its signature covers: room, epoch, the hash of the commit
// that started the epoch, sender, message id and the hash of the key
// package whose message-signing key signs.
type RoomMessageHeader struct {
	Room           [16]byte
	Epoch          uint64
	CommitHash     [32]byte
	Sender         [32]byte
	MessageID      [16]byte
	KeyPackageHash [32]byte
}

// RoomMessageAAD is the associated data of a room message's seal.
func RoomMessageAAD(h *RoomMessageHeader) []byte {
	return New(LabelRoomMessageAAD).Bytes(h.Room[:]).Uint64(h.Epoch).Bytes(h.CommitHash[:]).Bytes(h.Sender[:]).
		Bytes(h.MessageID[:]).Bytes(h.KeyPackageHash[:]).Out()
}

// RoomMessage is the layout a sender signs under LabelRoomMessage with its
// message-signing key: the header's fields in RoomMessageAAD's order, then
// the sealed box.
func RoomMessage(h *RoomMessageHeader, box []byte) []byte {
	return New(LabelRoomMessage).Bytes(h.Room[:]).Uint64(h.Epoch).Bytes(h.CommitHash[:]).Bytes(h.Sender[:]).
		Bytes(h.MessageID[:]).Bytes(h.KeyPackageHash[:]).Bytes(box).Out()
}

// RoomLeave is the layout of a leave request, signed under LabelRoomLeave
// by the leaving member's identity key: room, member, the epoch it last
// verified, time.
func RoomLeave(room [16]byte, member [32]byte, epoch, timeMillis uint64) []byte {
	return New(LabelRoomLeave).Bytes(room[:]).Bytes(member[:]).Uint64(epoch).Uint64(timeMillis).Out()
}

// Announce is the layout a peer signs (label LabelAnnounce) to announce
// itself on the LAN: its peer ID, the random instance id of the running
// process, its TCP addresses and its HTTP addresses (each a list of 18-byte
// elements: the 16-byte IPv6 or IPv4-mapped address, then the 2-byte
// big-endian port), the scheme the HTTP addresses serve ("http" or
// "https"; empty when there are none), its display name (UTF-8), its
// announcement interval in milliseconds (receivers expire it after three)
// and the time it signed, in Unix milliseconds.
func Announce(peer [32]byte, instance [16]byte, tcp, http [][]byte, httpScheme, name string, intervalMillis, timeMillis uint64) []byte {
	return New(LabelAnnounce).Bytes(peer[:]).Bytes(instance[:]).List(tcp...).List(http...).String(httpScheme).
		String(name).Uint64(intervalMillis).Uint64(timeMillis).Out()
}

// DirectoryRecordFields are the fields of a directory record (DESIGN.md §8),
// signed under LabelDirectoryRecord by the peer's identity key. Peer is the
// SHA-256 of IdentityKey, so anyone holding the record can verify it without
// knowing the key beforehand.
type DirectoryRecordFields struct {
	Peer          [32]byte
	IdentityKey   []byte   // SPKI DER
	TCPAddrs      []string // "host:port", in the peer's order of preference
	HTTPAddrs     []string // URL of the peer's HTTP shim: "http://host:port" or "https://host:port"
	IssuedMillis  uint64
	ExpiresMillis uint64
}

// DirectoryRecord is the layout of a directory record: peer ID, identity
// key, TCP address list, HTTP address list, issued, expires. Each address
// list is one list field whose elements are the addresses' bytes.
func DirectoryRecord(f *DirectoryRecordFields) []byte {
	tcp := make([][]byte, len(f.TCPAddrs))
	for i, a := range f.TCPAddrs {
		tcp[i] = []byte(a)
	}
	web := make([][]byte, len(f.HTTPAddrs))
	for i, a := range f.HTTPAddrs {
		web[i] = []byte(a)
	}
	return New(LabelDirectoryRecord).Bytes(f.Peer[:]).Bytes(f.IdentityKey).List(tcp...).List(web...).
		Uint64(f.IssuedMillis).Uint64(f.ExpiresMillis).Out()
}
