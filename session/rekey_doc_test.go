package session

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestDocRekeyLimits: docs/PROTOCOL.md's table of direct-message and
// rekey limits (§15.5) lists exactly the values in code.
func TestDocRekeyLimits(t *testing.T) {
	b, err := os.ReadFile("../docs/PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"`MaxMessagesPerEpoch`":       "4294967296",
		"`DefaultRekeyAfterMessages`": "1048576",
		"`DefaultRekeyAfterTime`":     DefaultRekeyAfterTime.String(),
		"`DefaultRekeyMinInterval`":   DefaultRekeyMinInterval.String(),
		"receive keys held":           "3",
	}
	if MaxMessagesPerEpoch != 4294967296 || DefaultRekeyAfterMessages != 1048576 || maxHeldEpochs != 3 ||
		DefaultRekeyAfterTime != time.Hour || DefaultRekeyMinInterval != time.Second {
		t.Fatal("the expected values above no longer match the constants")
	}
	in, seen := false, 0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "#") {
			in = strings.HasSuffix(line, " 15.5 Limits")
			continue
		}
		if !in || !strings.HasPrefix(line, "| ") || strings.HasPrefix(line, "| Name") {
			continue
		}
		cells := strings.Split(line, "|")
		name, value := strings.TrimSpace(cells[1]), strings.TrimSpace(cells[2])
		w, ok := want[name]
		if !ok {
			t.Errorf("PROTOCOL.md §15.5 lists unknown limit %s", name)
			continue
		}
		if value != w {
			t.Errorf("PROTOCOL.md §15.5: %s = %s, code says %s", name, value, w)
		}
		seen++
	}
	if seen != len(want) {
		t.Errorf("PROTOCOL.md §15.5 lists %d of the %d limits", seen, len(want))
	}
}
