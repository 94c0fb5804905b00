package cryptosuite

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"hash"
)

// A256CBC-HS512, exactly RFC 7518 §5.2.2 and §5.2.5: K = MAC_KEY ‖ ENC_KEY
// (32 bytes each), E = AES-256-CBC(ENC_KEY, IV, PKCS#7(P)), AL = the bit
// length of A as 8 bytes big-endian, T = HMAC-SHA-512(MAC_KEY, A ‖ IV ‖ E ‖
// AL)[:32]. The ciphertext returned by Seal is E ‖ T; the IV travels in
// front of it as the nonce.
const (
	cbcHMACKeySize = 64
	cbcIVSize      = aes.BlockSize
	cbcTagSize     = 32
)

// newBlockCipher builds the AES block cipher. Tests replace it with a
// counting wrapper to show that no block is decrypted after a MAC failure.
var newBlockCipher = aes.NewCipher

type cbcHMAC struct {
	// keyed is HMAC-SHA-512 keyed with the MAC key and never written to;
	// each tag starts from a clone of it, which saves re-deriving the
	// padded key blocks on every message and keeps the AEAD safe for
	// concurrent use.
	keyed hash.Cloner
	block cipher.Block
}

var errCBCKeySize = errors.New("cryptosuite: A256CBC-HS512 key must be 64 bytes")

// newCBCHMAC returns A256CBC-HS512 as a cipher.AEAD whose nonce is the
// 16-byte IV. The IV must be fresh and random for every message (DESIGN.md
// §5: never a counter); SealRandom does that.
func newCBCHMAC(key []byte) (cipher.AEAD, error) {
	if len(key) != cbcHMACKeySize {
		return nil, errCBCKeySize
	}
	b, err := newBlockCipher(key[32:])
	if err != nil {
		return nil, err
	}
	keyed, ok := cbcMAC(key[:32]).(hash.Cloner)
	if !ok {
		return nil, errors.New("cryptosuite: HMAC-SHA-512 cannot be cloned")
	}
	return &cbcHMAC{keyed: keyed, block: b}, nil
}

func (a *cbcHMAC) NonceSize() int { return cbcIVSize }

// Overhead is the largest growth: a full padding block plus the tag.
func (a *cbcHMAC) Overhead() int { return aes.BlockSize + cbcTagSize }

// cbcMAC is the MAC of A256CBC-HS512 before truncation: HMAC-SHA-512 from
// crypto/hmac. The Wycheproof HMAC-SHA-512 vectors run through it.
func cbcMAC(key []byte) hash.Hash { return hmac.New(sha512.New, key) }

func (a *cbcHMAC) tag(dst *[cbcTagSize]byte, aad, iv, e []byte) {
	m, err := a.keyed.Clone()
	if err != nil {
		// Every hash of the standard library clones (outside FIPS
		// v1.0.0 mode, which lanpeer does not support).
		panic("cryptosuite: cloning HMAC-SHA-512: " + err.Error())
	}
	m.Write(aad)
	m.Write(iv)
	m.Write(e)
	var al [8]byte
	binary.BigEndian.PutUint64(al[:], uint64(len(aad))*8)
	m.Write(al[:])
	var sum [sha512.Size]byte
	copy(dst[:], m.Sum(sum[:0])[:cbcTagSize])
}

func (a *cbcHMAC) Seal(dst, iv, plaintext, aad []byte) []byte {
	if len(iv) != cbcIVSize {
		panic("cryptosuite: A256CBC-HS512 IV must be 16 bytes")
	}
	ret := cbcEncrypt(a.block, iv, dst, plaintext)
	e := ret[len(dst):]
	var t [cbcTagSize]byte
	a.tag(&t, aad, iv, e)
	return append(ret, t[:]...)
}

// Open checks the tag in constant time before anything is decrypted; every
// failure (length, tag, padding) is the same ErrDecrypt, so the result tells
// a padding oracle nothing.
func (a *cbcHMAC) Open(dst, iv, ciphertext, aad []byte) ([]byte, error) {
	if len(iv) != cbcIVSize || len(ciphertext) < aes.BlockSize+cbcTagSize ||
		(len(ciphertext)-cbcTagSize)%aes.BlockSize != 0 {
		return nil, ErrDecrypt
	}
	e, t := ciphertext[:len(ciphertext)-cbcTagSize], ciphertext[len(ciphertext)-cbcTagSize:]
	var want [cbcTagSize]byte
	a.tag(&want, aad, iv, e)
	if subtle.ConstantTimeCompare(want[:], t) != 1 {
		return nil, ErrDecrypt
	}
	// The tag was good, so only a key holder made these bytes; the padding
	// check inside cbcDecrypt can no longer leak anything to an attacker.
	return cbcDecrypt(a.block, iv, dst, e)
}

// cbcEncrypt appends CBC(b, iv, PKCS#7(plaintext)) to dst: always 1 to
// b.BlockSize() bytes of padding, so the output is a whole number of blocks
// and never empty. It is the encryption half of A256CBC-HS512, kept apart
// so that the plain AES-CBC vectors test the very same code. The output may
// overwrite plaintext only when plaintext[:0] is dst (exact overlap).
func cbcEncrypt(b cipher.Block, iv, dst, plaintext []byte) []byte {
	bs := b.BlockSize()
	pad := bs - len(plaintext)%bs
	n := len(plaintext) + pad
	// Room for the A256CBC-HS512 tag too, so Seal appends it in place.
	ret, _ := sliceForAppend(dst, n+cbcTagSize)
	ret = ret[:len(dst)+n]
	e := ret[len(dst):]
	copy(e, plaintext)
	for i := len(plaintext); i < n; i++ {
		e[i] = byte(pad)
	}
	cipher.NewCBCEncrypter(b, iv).CryptBlocks(e, e)
	return ret
}

// cbcDecrypt appends the CBC decryption of e under b and iv to dst, with its
// PKCS#7 padding checked in constant time and removed. Every failure (IV
// size, length not a positive multiple of the block size, bad padding) is
// ErrDecrypt, and no plaintext is left in dst's spare capacity on failure.
// In A256CBC-HS512 it runs only after the tag has been verified.
func cbcDecrypt(b cipher.Block, iv, dst, e []byte) ([]byte, error) {
	bs := b.BlockSize()
	if len(iv) != bs || len(e) == 0 || len(e)%bs != 0 {
		return nil, ErrDecrypt
	}
	ret, out := sliceForAppend(dst, len(e))
	cipher.NewCBCDecrypter(b, iv).CryptBlocks(out, e)
	pad := int(out[len(out)-1])
	good := subtle.ConstantTimeLessOrEq(1, pad) & subtle.ConstantTimeLessOrEq(pad, bs)
	for i := 1; i <= bs; i++ {
		inPad := subtle.ConstantTimeLessOrEq(i, pad)
		match := subtle.ConstantTimeByteEq(out[len(out)-i], byte(pad))
		good &= subtle.ConstantTimeSelect(inPad, match, 1)
	}
	if good != 1 {
		clear(out)
		return nil, ErrDecrypt
	}
	return ret[:len(ret)-pad], nil
}

// sliceForAppend extends in by n bytes, returning the whole slice and the
// new tail (the idiom of crypto/cipher).
func sliceForAppend(in []byte, n int) (head, tail []byte) {
	if total := len(in) + n; cap(in) >= total {
		head = in[:total]
	} else {
		head = make([]byte, total)
		copy(head, in)
	}
	tail = head[len(in):]
	return
}
