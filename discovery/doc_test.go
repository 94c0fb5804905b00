package discovery

import (
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// protocolSection returns the table rows (as cells) under the heading of
// docs/PROTOCOL.md that ends with title.
func protocolSection(t *testing.T, title string) [][]string {
	t.Helper()
	b, err := os.ReadFile("../docs/PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	var rows [][]string
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "#") {
			in = strings.HasSuffix(line, " "+title)
			continue
		}
		if !in || !strings.HasPrefix(line, "|") || strings.HasPrefix(line, "|---") {
			continue
		}
		var cells []string
		for _, c := range strings.Split(strings.Trim(line, "|"), "|") {
			cells = append(cells, strings.Trim(strings.TrimSpace(c), "`"))
		}
		rows = append(rows, cells)
	}
	if len(rows) < 2 {
		t.Fatalf("PROTOCOL.md has no table under %q", title)
	}
	return rows[1:] // without the header row
}

// TestDocLimits: §19.7 lists exactly these limits and timers, with the
// values in code.
func TestDocLimits(t *testing.T) {
	d := func(v time.Duration) string { return v.String() }
	n := strconv.Itoa
	want := map[string]string{
		"DefaultPort": n(DefaultPort), "MaxDatagram": n(MaxDatagram), "QuerySize": n(QuerySize),
		"MaxSPKISize": n(MaxSPKISize), "MaxSigSize": n(MaxSigSize), "MaxBlobSize": n(MaxBlobSize),
		"MaxAddrs": n(MaxAddrs), "MaxNameSize": n(MaxNameSize), "InstanceIDSize": n(InstanceIDSize),
		"DefaultInterval": d(DefaultInterval), "MinInterval": d(MinInterval), "MaxInterval": d(MaxInterval),
		"ExpiryIntervals": n(ExpiryIntervals), "ResignAfter": d(ResignAfter),
		"DefaultMaxClockSkew": d(DefaultMaxClockSkew), "MaxAnswerDelay": d(MaxAnswerDelay),
		"ForcedAnnounceGap": d(ForcedAnnounceGap), "MaxPendingAnswers": n(MaxPendingAnswers),
		"DefaultLookupTimeout": d(DefaultLookupTimeout), "DefaultMaxPeers": n(DefaultMaxPeers),
		"DefaultSourceRate": n(DefaultSourceRate), "DefaultSourceBurst": n(DefaultSourceBurst),
		"DefaultMaxSources": n(DefaultMaxSources),
	}
	seen := map[string]bool{}
	for _, r := range protocolSection(t, "19.7 Limits and timers") {
		w, ok := want[r[0]]
		if !ok {
			t.Errorf("PROTOCOL.md §19.7 lists unknown %s", r[0])
		} else if r[1] != w {
			t.Errorf("PROTOCOL.md §19.7: %s = %s, code says %s", r[0], r[1], w)
		}
		seen[r[0]] = true
	}
	for k := range want {
		if !seen[k] {
			t.Errorf("PROTOCOL.md §19.7 lacks %s", k)
		}
	}
}

// TestDocLayout: the field bounds of §19.3 and §19.4 are the code's.
func TestDocLayout(t *testing.T) {
	env := protocolSection(t, "19.3 Announcement")
	want := [][2]string{
		{"key", "1.." + strconv.Itoa(MaxSPKISize)},
		{"blob", strconv.Itoa(minBlobSize) + ".." + strconv.Itoa(MaxBlobSize)},
		{"signature", "0.." + strconv.Itoa(MaxSigSize)},
	}
	for i, w := range want {
		if env[i][0] != w[0] || env[i][1] != w[1] {
			t.Errorf("PROTOCOL.md §19.3 row %d: %s %s, code says %s %s", i, env[i][0], env[i][1], w[0], w[1])
		}
	}
	q := protocolSection(t, "19.4 Query")
	if q[2][0] != "38" || q[2][1] != strconv.Itoa(QuerySize-HeaderSize-32) {
		t.Errorf("PROTOCOL.md §19.4 padding row %v, code says 38 and %d", q[2], QuerySize-HeaderSize-32)
	}
}

// TestDocCounters: §19.8 names every counter of the Stats invariant, as
// Stats spells it, and nothing else.
func TestDocCounters(t *testing.T) {
	var got []string
	for _, r := range protocolSection(t, "19.8 Counters") {
		got = append(got, r[0])
	}
	want := []string{"Received", "Accepted", "Queries"}
	for v := dropOversized; v <= dropCacheFull; v++ {
		want = append(want, camel(v.String()))
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("PROTOCOL.md §19.8 lists %q, want %q", got, want)
	}
	st := reflect.TypeOf(Stats{})
	for _, name := range want {
		if _, ok := st.FieldByName(name); !ok {
			t.Errorf("PROTOCOL.md §19.8 lists %s, which Stats lacks", name)
		}
	}
}

// camel spells a verdict's name as its Stats field: "bad key" is BadKey.
func camel(s string) string {
	var b strings.Builder
	for _, w := range strings.Fields(s) {
		b.WriteString(strings.ToUpper(w[:1]) + w[1:])
	}
	return b.String()
}
