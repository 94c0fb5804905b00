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
