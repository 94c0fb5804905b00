// Package bench holds the scenarios of `lanpeer bench`: each starts its own
// host and clients on loopback (real TCP, TLS, yamux and the in-memory store
// unless told otherwise), runs a bounded load, and measures beside it a
// baseline of the same work without lanpeer's logic, in the same run on the
// same machine, so that the ratio between them means something wherever it
// runs (docs/PERFORMANCE.md).
//
// A scenario returns a Report: one Result per case, each an ordered list of
// named fields whose names are stable (scripts read them from the JSON
// form). Every scenario is bounded in time by Options.Duration and a hang
// deadline, and in size by its options.
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lanpeer/lanpeer/store"
	"github.com/lanpeer/lanpeer/store/memory"
)

// Options configure a scenario. A zero field selects its default.
type Options struct {
	// Duration is how long each timed phase runs (default 2 s).
	Duration time.Duration
	// Sessions is the sessions scenario's number of idle sessions
	// (default 1,000).
	Sessions int
	// Members are the relay scenario's numbers of online members
	// (default 1, 10, 100).
	Members []int
	// Sizes are the relay scenario's message sizes, bytes of text
	// (default 256 and 4096).
	Sizes []int
	// Cases restricts the handshake scenario to these cases, named
	// KEX/KEY as the results name them (e.g. "x25519/ed25519"); empty:
	// every case.
	Cases []string
	// Ciphers restricts the e2e scenario to these AEAD names; empty:
	// every suite.
	Ciphers []string
	// Clients is the churn scenario's number of concurrent clients
	// (default 50).
	Clients int
	// SkipMessageSignatures makes the host store messages without
	// verifying their signatures (node.ServiceConfig); default: it does.
	SkipMessageSignatures bool
	// NewStore makes the host's store (default: a memory store that
	// keeps 1<<20 messages per room). The scenario closes it.
	NewStore func(ctx context.Context) (store.Store, error)
	// Child makes the command that runs a client process of the sessions
	// scenario: the caller's program, given args, must call RunChild with
	// them (lanpeer re-executes itself with a hidden subcommand). Required
	// by the sessions scenario.
	Child func(ctx context.Context, args []string) *exec.Cmd
	// Logger receives progress notes (default: discard).
	Logger *slog.Logger
}

func (o *Options) duration() time.Duration {
	if o.Duration <= 0 {
		return 2 * time.Second
	}
	return o.Duration
}

func (o *Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return o.Logger
}

func (o *Options) newStore(ctx context.Context) (store.Store, error) {
	if o.NewStore != nil {
		return o.NewStore(ctx)
	}
	return memory.New(memory.Options{HistoryPerRoom: 1 << 20, MaxBytes: 8 << 30})
}

// hang bounds any single wait of a scenario (a session to come up, a
// message to arrive) whatever the duration asked: past it the scenario
// fails instead of hanging.
const hang = 60 * time.Second

// Field is one named figure of a Result.
type Field struct {
	Name  string
	Value any // string, int, int64, uint64 or float64
}

// Result is one case of a scenario: its fields in a fixed order.
type Result []Field

// Get returns the value of the field name, and whether it is there.
func (r Result) Get(name string) (any, bool) {
	for _, f := range r {
		if f.Name == name {
			return f.Value, true
		}
	}
	return nil, false
}

// MarshalJSON writes the result as one JSON object, fields in order.
func (r Result) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range r {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(f.Name)
		v := f.Value
		if x, ok := v.(float64); ok {
			v = round(x)
		}
		vb, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("bench: field %s: %w", f.Name, err)
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// round keeps 4 significant digits (at least 3 decimals below 1): the
// figures are measurements, not exact values. Inf and NaN become 0.
func round(x float64) float64 {
	if math.IsInf(x, 0) || math.IsNaN(x) || x == 0 {
		return 0
	}
	digits := 4 - int(math.Ceil(math.Log10(math.Abs(x))))
	digits = max(digits, 0)
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}

// Machine says where the figures come from.
type Machine struct {
	GOOS       string `json:"goos"`
	GOARCH     string `json:"goarch"`
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPU        string `json:"cpu,omitempty"`
	Go         string `json:"go"`
}

func thisMachine() Machine {
	m := Machine{GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// Report is a scenario's outcome: `{"scenario": "...", "results": [...]}`
// in JSON, with the machine it ran on.
type Report struct {
	Scenario string   `json:"scenario"`
	Machine  Machine  `json:"machine"`
	Duration string   `json:"duration"`
	Results  []Result `json:"results"`
}

// WriteJSON writes the report as one JSON object on one line.
func (r *Report) WriteJSON(w io.Writer) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// WriteTable writes the report as a table for people: one row per
// result, one column per field.
func (r *Report) WriteTable(w io.Writer) error {
	m := r.Machine
	fmt.Fprintf(w, "%s: %s/%s, %d CPUs (GOMAXPROCS %d), %s", r.Scenario, m.GOOS, m.GOARCH, m.CPUs, m.GOMAXPROCS, m.Go)
	if m.CPU != "" {
		fmt.Fprintf(w, ", %s", m.CPU)
	}
	fmt.Fprintf(w, "; %s per phase\n", r.Duration)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	var cols []string
	for _, res := range r.Results {
		for _, f := range res {
			if !slices.Contains(cols, f.Name) {
				cols = append(cols, f.Name)
			}
		}
	}
	fmt.Fprintln(tw, strings.Join(cols, "\t")+"\t")
	for _, res := range r.Results {
		cells := make([]string, len(cols))
		for i, c := range cols {
			v, ok := res.Get(c)
			if ok {
				cells[i] = formatValue(v)
			}
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	return tw.Flush()
}

func formatValue(v any) string {
	switch x := v.(type) {
	case float64:
		return strconv.FormatFloat(round(x), 'f', -1, 64)
	case string:
		return x
	}
	return fmt.Sprint(v)
}

// Scenario runs one scenario.
type Scenario func(ctx context.Context, o *Options) ([]Result, error)

// Scenarios are the scenarios by name, in the order `lanpeer bench` lists
// them.
var Scenarios = []struct {
	Name, Usage string
	Run         Scenario
}{
	{"handshake", "full sessions (TCP, TLS, handshake) per second, per key agreement and identity key, beside the bare cryptography (ratio_to_bound)", Handshake},
	{"relay", "room messages from one sender to 1, 10 and 100 members: delivered/s and p50/p99 latency, beside framed msgpack over TLS (ratio_to_transport)", Relay},
	{"sessions", "N idle sessions held by one host (clients in child processes): host RSS per session beside bare TLS + yamux (ratio_to_bare), and messages/s meanwhile", Sessions},
	{"churn", "clients connecting, making requests and dropping at random: sessions/s, p99 connect latency, errors, what the host keeps afterwards", Churn},
	{"http", "authenticated message POSTs per second through the HTTP shim with keep-alive, beside a bare net/http handler doing the same JSON decode (ratio_to_bare)", HTTP},
	{"e2e", "a client's cost of one room message per AEAD: sender key, encrypt, sign, verify, decrypt, whole seal and open (ops/s)", E2E},
}

// Run runs the scenario named name.
func Run(ctx context.Context, name string, o *Options) (*Report, error) {
	for _, s := range Scenarios {
		if s.Name == name {
			res, err := s.Run(ctx, o)
			if err != nil {
				return nil, err
			}
			return &Report{Scenario: name, Machine: thisMachine(), Duration: o.duration().String(), Results: res}, nil
		}
	}
	return nil, fmt.Errorf("bench: no scenario %q", name)
}

// ErrUnsupported is returned where the platform cannot measure what the
// scenario asks (RSS outside Linux).
var ErrUnsupported = errors.New("bench: not supported on this platform")

// rss returns the process's resident set size in bytes, after a garbage
// collection that hands freed memory back to the system, so that two
// readings differ by what is live.
func rss() (int64, error) {
	runtime.GC()
	debug.FreeOSMemory()
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, fmt.Errorf("bench: /proc/self/statm: %q", b)
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bench: /proc/self/statm: %w", err)
	}
	return pages * int64(os.Getpagesize()), nil
}

// percentile returns the p-th percentile (0 to 100) of sorted values.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// ratio is a/b, or 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// loopbackAddr is the i-th client address: 127.0.0.2 to 127.0.0.251, so
// that clients come from distinct addresses as on a LAN.
func loopbackAddr(i int) string { return fmt.Sprintf("127.0.0.%d", 2+i%250) }
