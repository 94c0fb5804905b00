package room

import (
	"fmt"
	"unicode/utf8"
)

// CheckText reports whether text may be sent as a room message: 1 to
// MaxTextSize bytes of valid UTF-8 without the characters that could forge
// output on a reader's terminal — the same fixed list as a direct message's
// (docs/PROTOCOL.md §14.1): C0 controls other than tab and line feed, DEL,
// C1 controls, U+2028 and U+2029, and the bidirectional controls U+202A to
// U+202E and U+2066 to U+2069. The error matches ErrBadText.
func CheckText(text string) error {
	if len(text) == 0 || len(text) > MaxTextSize {
		return fmt.Errorf("%w: text of %d bytes (1 to %d)", ErrBadText, len(text), MaxTextSize)
	}
	return checkChars(text, false)
}

// CheckName reports whether name may name a room: 1 to MaxNameSize bytes
// under CheckText's rule, and on one line (no tab or line feed either).
func CheckName(name string) error {
	if len(name) == 0 || len(name) > MaxNameSize {
		return fmt.Errorf("%w: room name of %d bytes (1 to %d)", ErrBadText, len(name), MaxNameSize)
	}
	return checkChars(name, true)
}

func checkChars(s string, oneLine bool) error {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return fmt.Errorf("%w: not valid UTF-8 at byte %d", ErrBadText, i)
			}
		}
		if forbiddenChar(r) || (oneLine && (r == '\t' || r == '\n')) {
			return fmt.Errorf("%w: character %U at byte %d", ErrBadText, r, i)
		}
	}
	return nil
}

func forbiddenChar(r rune) bool {
	switch {
	case r == '\t' || r == '\n':
		return false
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f: // C0, DEL, C1
		return true
	case r == 0x2028 || r == 0x2029: // line and paragraph separators
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069: // bidi embeddings, overrides, isolates
		return true
	}
	return false
}
