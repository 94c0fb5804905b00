package wire_test

import (
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/lanpeer/lanpeer/framing"
	"github.com/lanpeer/lanpeer/wire"
)

// docConstants are the constants docs/PROTOCOL.md names, with their values
// in code.
var docConstants = map[string]int{
	"Version":              int(wire.Version),
	"HeaderSize":           framing.HeaderSize,
	"MaxControlFrame":      framing.MaxControlFrame,
	"MaxFrameCeiling":      framing.MaxFrameCeiling,
	"PeerIDSize":           wire.PeerIDSize,
	"SessionIDSize":        wire.SessionIDSize,
	"NonceSize":            wire.NonceSize,
	"MACSize":              wire.MACSize,
	"MaxIdentityKeySize":   wire.MaxIdentityKeySize,
	"MaxShareSize":         wire.MaxShareSize,
	"MinAEADs":             wire.MinAEADs,
	"MaxAEADs":             wire.MaxAEADs,
	"MaxSigSize":           wire.MaxSigSize,
	"MaxSealedAuthKeySize": wire.MaxSealedAuthKeySize,
	"MaxErrorMessageSize":  wire.MaxErrorMessageSize,
	"MaxDirectTextSize":    wire.MaxDirectTextSize,
	"MaxBoxSize":           wire.MaxBoxSize,
	"MaxSeq":               wire.MaxSeq,
	"MaxRequestFrame":      wire.MaxRequestFrame,
	"RoomIDSize":           wire.RoomIDSize,
	"HashSize":             wire.HashSize,
	"MaxRoomNameSize":      wire.MaxRoomNameSize,
	"MaxKeyPackageBlob":    wire.MaxKeyPackageBlob,
	"MaxWrappedKeyBlob":    wire.MaxWrappedKeyBlob,
	"MaxMessageBlob":       wire.MaxMessageBlob,
	"MaxLeaveBlob":         wire.MaxLeaveBlob,
	"MaxCommitBlob":        wire.MaxCommitBlob,
	"MaxListLimit":         wire.MaxListLimit,
	"MaxInfoMembers":       wire.MaxInfoMembers,
}

// docSections splits docs/PROTOCOL.md into its sections by heading
// ("## 12. Constants", "### Hello") and returns each section's table rows
// as cells.
func docSections(t *testing.T) (text string, rows map[string][][]string) {
	t.Helper()
	b, err := os.ReadFile("../docs/PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	rows = map[string][][]string{}
	section := ""
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "#") {
			section = strings.TrimSpace(strings.TrimLeft(line, "#"))
			continue
		}
		if !strings.HasPrefix(line, "|") || strings.HasPrefix(line, "|---") {
			continue
		}
		var cells []string
		for _, c := range strings.Split(strings.Trim(line, "|"), "|") {
			cells = append(cells, strings.TrimSpace(c))
		}
		rows[section] = append(rows[section], cells[:len(cells):len(cells)])
	}
	return string(b), rows
}

func unquote(s string) string { return strings.Trim(s, "`") }

func TestDocConstants(t *testing.T) {
	text, rows := docSections(t)
	seen := map[string]bool{}
	for _, r := range rows["12. Constants"][1:] {
		name := unquote(r[0])
		want, ok := docConstants[name]
		if !ok {
			t.Errorf("PROTOCOL.md lists unknown constant %s", name)
			continue
		}
		if got, _ := strconv.Atoi(r[1]); got != want {
			t.Errorf("PROTOCOL.md: %s = %s, code says %d", name, r[1], want)
		}
		seen[name] = true
	}
	for name := range docConstants {
		if !seen[name] {
			t.Errorf("PROTOCOL.md's constants table lacks %s", name)
		}
	}
	// Everywhere the text writes "N (`Name`)", N is Name's value.
	for _, m := range regexp.MustCompile("(\\d+) \\(`([A-Z]\\w+)`\\)").FindAllStringSubmatch(text, -1) {
		want, ok := docConstants[m[2]]
		if got, _ := strconv.Atoi(m[1]); !ok || got != want {
			t.Errorf("PROTOCOL.md writes %q; code says %d", m[0], want)
		}
	}
}

func TestDocMessageTypes(t *testing.T) {
	_, rows := docSections(t)
	var names []string
	for _, r := range rows["4.1 Message types"][1:] {
		n, err := strconv.ParseUint(strings.TrimPrefix(unquote(r[0]), "0x"), 16, 8)
		if err != nil {
			t.Fatal(err)
		}
		if got := wire.Type(n).String(); got != r[1] {
			t.Errorf("PROTOCOL.md: type %s is %s, code says %s", r[0], r[1], got)
		}
		names = append(names, r[1])
	}
	want := []string{"Hello", "HelloReply", "Finished", "Ready", "StreamOpen", "DirectMessage",
		"RekeyInit", "RekeyReply", "RekeyConfirm", "RekeyRequest"}
	for _, s := range roomSamples() {
		want = append(want, s.name)
	}
	if want = append(want, "Error"); !reflect.DeepEqual(names, want) {
		t.Errorf("PROTOCOL.md lists types %q, want %q", names, want)
	}
}

func TestDocErrorCodes(t *testing.T) {
	_, rows := docSections(t)
	codes := rows["10. Error codes"][1:]
	for _, r := range codes {
		n, _ := strconv.Atoi(r[0])
		c := wire.ErrorCode(n)
		if c.String() != unquote(r[1]) || c.Text() != r[2] {
			t.Errorf("PROTOCOL.md: code %d is %s %q, code says %s %q", n, r[1], r[2], c, c.Text())
		}
	}
	if len(codes) != int(wire.CodeConflict) {
		t.Errorf("PROTOCOL.md lists %d codes, code defines %d", len(codes), wire.CodeConflict)
	}
}

// TestDocStreamKinds: the stream kinds table lists exactly the kinds
// StreamOpen accepts, with their names.
func TestDocStreamKinds(t *testing.T) {
	_, rows := docSections(t)
	kinds := rows["13.1 Stream kinds"]
	if len(kinds) == 0 {
		t.Fatal("PROTOCOL.md has no stream kinds table")
	}
	n := 0
	for _, r := range kinds[1:] {
		k, err := strconv.Atoi(r[0])
		if err != nil {
			t.Fatal(err)
		}
		if got := wire.StreamKind(k).String(); got != unquote(r[1]) {
			t.Errorf("PROTOCOL.md: kind %d is %s, code says %s", k, r[1], got)
		}
		if err := (&wire.StreamOpen{Kind: wire.StreamKind(k)}).Validate(); err != nil {
			t.Errorf("PROTOCOL.md lists kind %d, which StreamOpen refuses: %v", k, err)
		}
		n++
	}
	for k := 0; k < 64; k++ {
		valid := (&wire.StreamOpen{Kind: wire.StreamKind(k)}).Validate() == nil
		if valid && (k < 1 || k > n) {
			t.Errorf("StreamOpen accepts kind %d, which PROTOCOL.md does not list", k)
		}
	}
}

func TestDocFieldTables(t *testing.T) {
	text, rows := docSections(t)
	kinds := map[string]reflect.Type{
		"uint16":                reflect.TypeOf(uint16(0)),
		"uint32":                reflect.TypeOf(uint32(0)),
		"uint53":                reflect.TypeOf(uint64(0)),
		"int64":                 reflect.TypeOf(int64(0)),
		"bytes":                 reflect.TypeOf([]byte(nil)),
		"list of uint16":        reflect.TypeOf([]uint16(nil)),
		"text":                  reflect.TypeOf(""),
		"bool":                  reflect.TypeOf(false),
		"list of bytes":         reflect.TypeOf([][]byte(nil)),
		"list of RoomEntry":     reflect.TypeOf([]wire.RoomEntry(nil)),
		"list of MemberEntry":   reflect.TypeOf([]wire.MemberEntry(nil)),
		"list of StoredMessage": reflect.TypeOf([]wire.StoredMessage(nil)),
	}
	sections := map[string]any{
		"Hello": wire.Hello{}, "HelloReply": wire.HelloReply{}, "Finished": wire.Finished{}, "Ready": wire.Ready{}, "9. Error": wire.Error{},
		"StreamOpen": wire.StreamOpen{}, "DirectMessage": wire.DirectMessage{}, "RekeyInit": wire.RekeyInit{},
		"RekeyReply": wire.RekeyReply{}, "RekeyConfirm": wire.RekeyConfirm{}, "RekeyRequest": wire.RekeyRequest{},
		"RoomEntry": wire.RoomEntry{}, "MemberEntry": wire.MemberEntry{}, "StoredMessage": wire.StoredMessage{},
	}
	for _, s := range roomSamples() {
		sections[s.name] = reflect.ValueOf(s.m).Elem().Interface()
	}
	for section, v := range sections {
		typ := reflect.TypeOf(v)
		table := rows[section]
		if typ.NumField() == 0 {
			if len(table) != 0 || !strings.Contains(text, "#### "+section+"\n") {
				t.Errorf("PROTOCOL.md: %s has no fields: want its heading and no table", section)
			}
			continue
		}
		if len(table) == 0 || table[0][0] != "Key" {
			t.Errorf("PROTOCOL.md: no field table under %q", section)
			continue
		}
		table = table[1:]
		if len(table) != typ.NumField() {
			t.Errorf("PROTOCOL.md: %s has %d fields, %s has %d", section, len(table), typ.Name(), typ.NumField())
			continue
		}
		for i, r := range table {
			f := typ.Field(i)
			if unquote(r[0]) != f.Tag.Get("msgpack") || r[1] != f.Name {
				t.Errorf("PROTOCOL.md: %s row %d is %s %s, code has %q %s", section, i, r[0], r[1], f.Tag.Get("msgpack"), f.Name)
			}
			if k, ok := kinds[r[2]]; !ok || !f.Type.ConvertibleTo(k) || f.Type.Kind() != k.Kind() {
				t.Errorf("PROTOCOL.md: %s.%s is %q, code has %v", section, f.Name, r[2], f.Type)
			}
		}
	}
}

// TestDocRoomReasons: the reasons table of §18.4 lists every reason with
// the name, code and fixed text the code gives it.
func TestDocRoomReasons(t *testing.T) {
	_, rows := docSections(t)
	reasons := rows["Reasons"]
	if len(reasons) == 0 {
		t.Fatal("PROTOCOL.md has no reasons table")
	}
	for _, r := range reasons[1:] {
		n, _ := strconv.Atoi(r[0])
		rr := wire.RoomReason(n)
		if rr.String() != unquote(r[1]) || rr.Code().String() != unquote(r[2]) || rr.Text() != r[3] {
			t.Errorf("PROTOCOL.md: reason %d is %s %s %q; code says %s %s %q", n, r[1], r[2], r[3], rr, rr.Code(), rr.Text())
		}
	}
	if len(reasons)-1 != int(wire.MaxRoomReason) {
		t.Errorf("PROTOCOL.md lists %d reasons, code defines %d", len(reasons)-1, wire.MaxRoomReason)
	}
}
