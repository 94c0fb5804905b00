package bench

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lanpeer/lanpeer/canon"
	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/room"
)

// E2E measures a client's cost of one room message of 256 bytes of text
// (Options.Sizes[0] if set), per AEAD suite, one goroutine: each step a
// sender or reader takes — derive the per-sender key, encrypt, sign,
// verify, decrypt — alone, then the whole seal (room.MemberState's
// SealMessage: encrypt and sign) and open (OpenMessage: verify and
// decrypt), as operations per second. Each step runs for a quarter of
// the duration.
func E2E(ctx context.Context, o *Options) ([]Result, error) {
	size := 256
	if len(o.Sizes) > 0 {
		size = o.Sizes[0]
	}
	text := strings.Repeat("x", size)
	var out []Result
	for _, s := range cryptosuite.AEADs() {
		if len(o.Ciphers) > 0 && !slices.ContainsFunc(o.Ciphers, func(c string) bool { return cipherKey(c) == cipherKey(s.Name) }) {
			continue
		}
		res, err := e2eSuite(ctx, o, s, text)
		if err != nil {
			return nil, fmt.Errorf("bench: e2e %s: %w", s.Name, err)
		}
		out = append(out, res...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("bench: no AEAD suite named %q", o.Ciphers)
	}
	return out, nil
}

// cipherKey folds a cipher's name for comparison: "AES-256-GCM",
// "aes256gcm" (the room commands' --cipher) and "aes-256-gcm" are one.
func cipherKey(name string) string {
	return strings.NewReplacer("-", "", "_", "").Replace(strings.ToLower(name))
}

func e2eSuite(ctx context.Context, o *Options, s *cryptosuite.AEADSuite, text string) ([]Result, error) {
	id, err := cryptosuite.GenerateIdentity(cryptosuite.KeyEd25519)
	if err != nil {
		return nil, err
	}
	secrets, err := room.GenerateKeyPackage(id, 0, time.Now(), 0)
	if err != nil {
		return nil, err
	}
	prop, err := room.NewRoom(room.RoomConfig{Master: id, KeyPackage: secrets.KeyPackage(), Name: "e2e", Suite: s.ID, Now: time.Now()})
	if err != nil {
		return nil, err
	}
	st, err := room.NewMemberState(prop.Commit, id.Public(), id.PeerID(), nil)
	if err != nil {
		return nil, err
	}
	c := &client{id: id, secrets: secrets}
	if err := openOwnKey(st, prop, c); err != nil {
		return nil, err
	}
	var msgID [room.MessageIDSize]byte
	blob, err := st.SealMessage(secrets, text, msgID)
	if err != nil {
		return nil, err
	}
	rk := cryptosuite.GenerateRoomKey()
	key, err := cryptosuite.SenderKey(rk, prop.Info.Room, 1, id.PeerID(), s)
	if err != nil {
		return nil, err
	}
	sealer, err := cryptosuite.NewSenderSealer(s, key, nil)
	if err != nil {
		return nil, err
	}
	a, err := s.New(key)
	if err != nil {
		return nil, err
	}
	// The associated data and the signed layout have a real message's
	// sizes: the header's fields, then the box.
	aad := canon.New(canon.LabelRoomMessageAAD).Bytes(make([]byte, 16)).Uint64(1).Bytes(make([]byte, 32)).
		Bytes(make([]byte, 32)).Bytes(make([]byte, 16)).Bytes(make([]byte, 32)).Out()
	box, err := sealer.Seal(nil, []byte(text), aad)
	if err != nil {
		return nil, err
	}
	layout := canon.New(canon.LabelRoomMessage).Bytes(aad).Bytes(box).Out()
	sig, err := id.Sign(canon.LabelRoomMessage, layout)
	if err != nil {
		return nil, err
	}
	steps := []struct {
		op string
		f  func() error
	}{
		{"sender_key", func() error {
			_, err := cryptosuite.SenderKey(rk, prop.Info.Room, 1, id.PeerID(), s)
			return err
		}},
		{"encrypt", func() error {
			// A fresh sealer per key would count the quota; this one has
			// 2^32 seals, more than any run makes.
			_, err := sealer.Seal(nil, []byte(text), aad)
			return err
		}},
		{"sign", func() error { _, err := id.Sign(canon.LabelRoomMessage, layout); return err }},
		{"verify", func() error { return id.Public().Verify(canon.LabelRoomMessage, layout, sig) }},
		{"decrypt", func() error { _, err := cryptosuite.OpenPrefixed(a, nil, box, aad); return err }},
		{"seal", func() error {
			fillRandom(msgID[:])
			_, err := st.SealMessage(secrets, text, msgID)
			return err
		}},
		{"open", func() error { _, err := st.OpenMessage(blob, secrets.KeyPackage()); return err }},
	}
	per := max(o.duration()/4, 10*time.Millisecond)
	var out []Result
	for _, step := range steps {
		n := 0
		start := time.Now()
		for time.Since(start) < per && ctx.Err() == nil {
			if err := step.f(); err != nil {
				return nil, fmt.Errorf("%s: %w", step.op, err)
			}
			n++
		}
		out = append(out, Result{
			{"cipher", s.Name},
			{"op", step.op},
			{"size", len(text)},
			{"ops_per_s", float64(n) / time.Since(start).Seconds()},
		})
	}
	return out, ctx.Err()
}
