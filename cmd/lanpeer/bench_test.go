package main

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestBenchScenarios runs every `lanpeer bench` scenario as a process, on
// its smallest case for a moment, and checks that it succeeds and that
// its JSON object has the shape scripts read: the scenario's name and,
// in each result, every field docs/PERFORMANCE.md names, with no errors
// for the honest clients. It measures nothing: no figure is compared.
func TestBenchScenarios(t *testing.T) {
	bin, env := lanpeerBin(t)
	for _, c := range []struct {
		args   []string
		fields []string
	}{
		{[]string{"handshake", "--case", "x25519/ed25519", "--duration", "80ms"},
			[]string{"kex", "key", "handshakes_per_s", "bound_per_s", "ratio_to_bound", "errors"}},
		{[]string{"relay", "--members", "2", "--sizes", "64", "--duration", "80ms"},
			[]string{"members", "size", "delivered_per_s", "transport_per_s", "ratio_to_transport", "p50_ms", "p99_ms", "transport_p99_ms", "errors"}},
		{[]string{"sessions", "--sessions", "12", "--duration", "80ms"},
			[]string{"sessions", "bytes_per_session", "bare_bytes_per_session", "ratio_to_bare", "delivered_per_s", "errors"}},
		{[]string{"churn", "--clients", "3", "--duration", "150ms"},
			[]string{"clients", "sessions_per_s", "connect_p99_ms", "p99_ms", "errors", "leaked_sessions"}},
		{[]string{"http", "--duration", "80ms"},
			[]string{"requests_per_s", "bare_per_s", "ratio_to_bare", "host_verifies", "errors"}},
		{[]string{"http", "--duration", "80ms", "--verify-message-signatures=false"},
			[]string{"requests_per_s", "bare_per_s", "ratio_to_bare", "host_verifies", "errors"}},
		{[]string{"e2e", "--cipher", "aes256gcm", "--duration", "40ms"},
			[]string{"cipher", "op", "ops_per_s"}},
	} {
		t.Run(c.args[0], func(t *testing.T) {
			cmd := exec.Command(filepath.Join(bin, "lanpeer"), append([]string{"bench"}, append(c.args, "--json")...)...)
			cmd.Env = env
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			if err := cmd.Run(); err != nil {
				t.Fatalf("lanpeer bench %q: %v; stderr %s", c.args, err, errb.String())
			}
			var rep struct {
				Scenario string           `json:"scenario"`
				Results  []map[string]any `json:"results"`
			}
			if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
				t.Fatalf("stdout is not one JSON object: %v: %q", err, out.String())
			}
			if rep.Scenario != c.args[0] || len(rep.Results) == 0 {
				t.Fatalf("scenario %q with %d results, want %q with at least one", rep.Scenario, len(rep.Results), c.args[0])
			}
			for i, r := range rep.Results {
				for _, f := range c.fields {
					if _, ok := r[f]; !ok {
						t.Errorf("result %d has no field %q: %v", i, f, r)
					}
				}
				if e, ok := r["errors"]; ok && e != float64(0) {
					t.Errorf("result %d: errors = %v, want 0 (honest clients)", i, e)
				}
			}
		})
	}
}

// TestBenchUsage: a missing or unknown scenario and bad values are usage
// errors (exit status 2) that name the scenarios.
func TestBenchUsage(t *testing.T) {
	for _, args := range [][]string{
		{"bench"},
		{"bench", "nosuch"},
		{"bench", "sessions", "--sessions", "0"},
		{"bench", "relay", "--members", "x"},
		{"bench", "e2e", "extra"},
	} {
		r := lanpeer(t, args...)
		if r.code != exitUsage || r.stdout != "" {
			t.Errorf("lanpeer %q: exit %d, stdout %q, stderr %q; want a usage error", args, r.code, r.stdout, r.stderr)
		}
	}
}
