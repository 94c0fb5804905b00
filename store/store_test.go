package store

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestTypedErrors(t *testing.T) {
	var err error = &TooLargeError{What: "message blob", Size: 70000, Max: MaxMessageSize}
	wrapped := fmt.Errorf("node: send: %w", err)
	var tl *TooLargeError
	if !errors.Is(wrapped, ErrTooLarge) || !errors.As(wrapped, &tl) || tl.Size != 70000 {
		t.Errorf("a wrapped *TooLargeError does not match ErrTooLarge with its fields")
	}
	if errors.Is(err, ErrInvalid) || errors.Is(err, ErrHistoryTrimmed) {
		t.Errorf("*TooLargeError matches other sentinels")
	}
	if got, want := err.Error(), "store: too large: message blob of 70000 exceeds maximum of 65536"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}

	err = &HistoryTrimmedError{Room: RoomID{0xab}, After: 2, Oldest: 10}
	var hte *HistoryTrimmedError
	if !errors.Is(fmt.Errorf("x: %w", err), ErrHistoryTrimmed) || !errors.As(err, &hte) || hte.Oldest != 10 {
		t.Errorf("*HistoryTrimmedError does not match ErrHistoryTrimmed with its fields")
	}
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrTooLarge) {
		t.Errorf("*HistoryTrimmedError matches other sentinels")
	}
	// The message tells the reader where to go on.
	if msg := err.Error(); !strings.Contains(msg, "read after 9 to go on") || !strings.HasPrefix(msg, "store: ") {
		t.Errorf("Error() = %q, want the store: prefix and the cursor to read on from", msg)
	}

	// Every sentinel is distinct, lower case and prefixed.
	all := []error{ErrNotFound, ErrExists, ErrConflict, ErrStale, ErrInvalid, ErrTooLarge, ErrFull,
		ErrHistoryTrimmed, ErrUnavailable, ErrClosed}
	for i, a := range all {
		if msg := a.Error(); !strings.HasPrefix(msg, "store: ") || strings.ToLower(msg) != msg {
			t.Errorf("sentinel %q is not a lower-case message with the store: prefix", msg)
		}
		for _, b := range all[i+1:] {
			if errors.Is(a, b) || errors.Is(b, a) {
				t.Errorf("sentinels %q and %q match each other", a, b)
			}
		}
	}
}

func TestMillis(t *testing.T) {
	loc := time.FixedZone("X", 3600)
	in := time.Date(2031, 5, 6, 7, 8, 9, 123_999_999, loc)
	got := Millis(in)
	if want := time.Date(2031, 5, 6, 6, 8, 9, 123_000_000, time.UTC); !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("Millis(%v) = %v, want %v in UTC", in, got, want)
	}
	// Floor, also before 1970 (BSON dates and UnixMilli agree on that).
	pre := time.Unix(-1, 500_000).UTC() // 0.9995 s before the epoch
	if got := Millis(pre).UnixMilli(); got != -1000 {
		t.Errorf("Millis before 1970: %d ms, want -1000", got)
	}
	if !Millis(got).Equal(got) {
		t.Errorf("Millis is not idempotent")
	}

	exp := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		now  time.Time
		want bool
	}{
		{exp.Add(-time.Millisecond), false},
		{exp.Add(-time.Nanosecond), false}, // the same millisecond as 1 ms before: not yet
		{exp, true},
		{exp.Add(time.Nanosecond), true},
		{exp.Add(time.Hour), true},
	} {
		if got := Expired(exp, tc.now); got != tc.want {
			t.Errorf("Expired(%v, now %v) = %v, want %v", exp, tc.now, got, tc.want)
		}
	}
}

func TestNames(t *testing.T) {
	for _, tc := range []struct {
		r     Role
		s     string
		valid bool
	}{
		{RoleMember, "member", true}, {RoleMaster, "master", true}, {0, "Role(0)", false}, {7, "Role(7)", false},
	} {
		if tc.r.String() != tc.s || tc.r.Valid() != tc.valid {
			t.Errorf("Role %d: String %q Valid %v, want %q %v", uint8(tc.r), tc.r.String(), tc.r.Valid(), tc.s, tc.valid)
		}
	}
	id := RoomID{0x01, 0xff}
	if got := id.String(); got != "01ff0000000000000000000000000000" || id.IsZero() || !(RoomID{}).IsZero() {
		t.Errorf("RoomID String/IsZero wrong: %q", got)
	}
	if got := id.LogValue().String(); got != id.String() {
		t.Errorf("RoomID LogValue = %q", got)
	}
	m := MessageID{0xaa}
	if got := m.String(); got != "aa000000000000000000000000000000" || m.IsZero() || !(MessageID{}).IsZero() {
		t.Errorf("MessageID String/IsZero wrong: %q", got)
	}
}
