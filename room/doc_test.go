package room

import (
	"fmt"
	"math/bits"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
)

// protocolSection returns the text of docs/PROTOCOL.md from the heading
// that starts with prefix to the next heading of the same or a higher
// level.
func protocolSection(t *testing.T, prefix string) string {
	t.Helper()
	b, err := os.ReadFile("../docs/PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		if !strings.HasPrefix(l, "#") {
			continue
		}
		level := len(l) - len(strings.TrimLeft(l, "#"))
		if !strings.HasPrefix(strings.TrimSpace(l[level:]), prefix) {
			continue
		}
		var out []string
		for _, m := range lines[i+1:] {
			if strings.HasPrefix(m, "#") && len(m)-len(strings.TrimLeft(m, "#")) <= level {
				break
			}
			out = append(out, m)
		}
		return strings.Join(out, "\n")
	}
	t.Fatalf("PROTOCOL.md has no section %q", prefix)
	return ""
}

// TestDocLimits: the limits table of PROTOCOL.md §16.10 gives the values
// the code uses.
func TestDocLimits(t *testing.T) {
	want := map[string]string{
		"room id":                 "16",
		"message id":              "16",
		"`MaxNameSize`":           fmt.Sprint(MaxNameSize),
		"`MaxTextSize`":           fmt.Sprint(MaxTextSize),
		"`MaxBoxSize`":            fmt.Sprint(MaxBoxSize),
		"`DefaultMaxMembers`":     fmt.Sprint(DefaultMaxMembers),
		"`DefaultMaxEpochs`":      fmt.Sprint(DefaultMaxEpochs),
		"`MaxKeyPackageBlob`":     fmt.Sprint(MaxKeyPackageBlob),
		"`MaxWrappedKeyBlob`":     fmt.Sprint(MaxWrappedKeyBlob),
		"`MaxMessageBlob`":        fmt.Sprint(MaxMessageBlob),
		"`MaxLeaveBlob`":          fmt.Sprint(MaxLeaveBlob),
		"commit blob":             fmt.Sprintf("%d + %d per member", MaxCommitBlob(0), MaxCommitBlob(1)-MaxCommitBlob(0)),
		"key package lifetime":    fmt.Sprintf("%d days", MaxKeyPackageLifetime/(24*time.Hour)),
		"key package clock skew":  fmt.Sprintf("%d minutes", KeyPackageClockSkew/time.Minute),
		"messages per sender key": fmt.Sprintf("2^%d", bits.TrailingZeros64(cryptosuite.MaxSealsPerSenderKey)),
	}
	row := regexp.MustCompile(`^\| ([^|]+?) \| ([^|]+?) \|`)
	seen := map[string]bool{}
	for _, l := range strings.Split(protocolSection(t, "16.10 Limits"), "\n") {
		m := row.FindStringSubmatch(l)
		if m == nil || m[1] == "Name" {
			continue
		}
		w, ok := want[m[1]]
		if !ok {
			t.Errorf("PROTOCOL.md §16.10 lists %s, which this test does not know", m[1])
			continue
		}
		if m[2] != w {
			t.Errorf("PROTOCOL.md §16.10: %s = %s, code says %s", m[1], m[2], w)
		}
		seen[m[1]] = true
	}
	for k := range want {
		if !seen[k] {
			t.Errorf("PROTOCOL.md §16.10 lacks %s", k)
		}
	}
	if !strings.Contains(protocolSection(t, "16.10 Limits"), fmt.Sprintf("(%d for %d)", MaxCommitBlob(DefaultMaxMembers), DefaultMaxMembers)) {
		t.Error("PROTOCOL.md §16.10: the commit bound for the default member limit is out of step")
	}
	for _, phrase := range []string{
		fmt.Sprintf("configurable up to %d", MaxMembersCeiling),
		fmt.Sprintf("valid for %d days by default", DefaultKeyPackageLifetime/(24*time.Hour)),
	} {
		if !strings.Contains(protocolSection(t, "16.10 Limits"), phrase) {
			t.Errorf("PROTOCOL.md §16.10 does not say %q", phrase)
		}
	}
}

// TestDocErrors: PROTOCOL.md §16.9 names every exported error of the
// package, and only those.
func TestDocErrors(t *testing.T) {
	text := protocolSection(t, "16.9 Errors")
	named := map[string]bool{}
	for _, m := range regexp.MustCompile("`(Err\\w+)`").FindAllStringSubmatch(text, -1) {
		named[m[1]] = true
	}
	src, err := os.ReadFile("errors.go")
	if err != nil {
		t.Fatal(err)
	}
	defined := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\t(Err\w+) += errors\.New`).FindAllStringSubmatch(string(src), -1) {
		defined[m[1]] = true
	}
	if len(defined) == 0 {
		t.Fatal("no errors found in errors.go")
	}
	for e := range defined {
		if !named[e] {
			t.Errorf("PROTOCOL.md §16.9 does not explain %s", e)
		}
	}
	for e := range named {
		if !defined[e] {
			t.Errorf("PROTOCOL.md §16.9 explains %s, which errors.go does not define", e)
		}
	}
}
