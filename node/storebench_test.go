package node

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	driver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/lanpeer/lanpeer/store"
	"github.com/lanpeer/lanpeer/store/memory"
	"github.com/lanpeer/lanpeer/store/mongo"
)

// benchMongoURI returns a URI naming a fresh database for a benchmark on
// the MongoDB store: on LANPEER_TEST_MONGO_URI's server, else on a
// FerretDB the benchmark starts from LANPEER_FERRETDB (make bench sets
// it); with neither, the benchmark is skipped.
func benchMongoURI(b *testing.B) string {
	b.Helper()
	base := os.Getenv("LANPEER_TEST_MONGO_URI")
	if base == "" {
		bin := os.Getenv("LANPEER_FERRETDB")
		if bin == "" {
			b.Skip("neither LANPEER_TEST_MONGO_URI nor LANPEER_FERRETDB is set: no MongoDB-wire server to measure (make bench sets LANPEER_FERRETDB)")
		}
		base = startBenchFerretDB(b, bin)
	}
	u, err := url.Parse(base)
	if err != nil {
		b.Fatal(err)
	}
	r := make([]byte, 6)
	_, _ = rand.Read(r)
	u.Path = "/lanpeer_bench_" + hex.EncodeToString(r)
	return u.String()
}

// startBenchFerretDB starts bin on a temporary directory until the
// benchmark ends and returns its URI.
func startBenchFerretDB(b *testing.B, bin string) string {
	b.Helper()
	cmd := exec.Command(bin, "-listen", "127.0.0.1:0", "-log-level", "error", b.TempDir())
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	lines := make(chan string, 1)
	go func() {
		r := bufio.NewReader(out)
		line, _ := r.ReadString('\n')
		lines <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, r)
		_ = cmd.Wait()
		close(done)
	}()
	b.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	select {
	case line := <-lines:
		return line
	case <-time.After(hang):
		b.Fatal("FerretDB did not start")
	}
	return ""
}

// sendRun sends n messages sealed beforehand to a fresh room on a host
// over st, from concurrency requests at a time on one session, and
// returns messages stored per second and the 99th percentile of one
// send's latency (request to acknowledgement, after the store has it).
func sendRun(b *testing.B, st store.Store, n, concurrency int) (float64, time.Duration) {
	b.Helper()
	h := startHostsOn(b, st, 1, 0)[0]
	p := h.newRoomPeer(b, "sender")
	id := p.createRoom(b, "bench")
	text := strings.Repeat("x", 256)
	blobs := make([][]byte, n)
	for i := range blobs {
		blobs[i] = p.seal(b, text)
	}
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t0 := time.Now()
				if _, err := p.rc.Send(context.Background(), id, blobs[i]); err != nil {
					b.Error(err)
					return
				}
				lat[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lat)
	return float64(n) / elapsed.Seconds(), lat[min(n-1, n*99/100)]
}

// BenchmarkSendStores sends the same messages through a host on the
// memory store and on the MongoDB store in one run (over loopback TCP, 8
// requests in flight, 256 bytes of text each) and reports each store's
// messages stored per second and p99 send latency, and the MongoDB
// store's as a ratio of the memory store's. Each iteration is one message
// on each store; ns/op is left out, as it mixes the two.
func BenchmarkSendStores(b *testing.B) {
	uri := benchMongoURI(b)
	const concurrency = 8
	b.StopTimer()
	mem, err := memory.New(memory.Options{HistoryPerRoom: 1 << 20, MaxBytes: 4 << 30})
	if err != nil {
		b.Fatal(err)
	}
	defer mem.Close()
	mg, err := mongo.Open(context.Background(), uri, mongo.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer mg.Close()
	defer dropBenchDatabase(b, uri)
	n := max(b.N, concurrency)
	b.StartTimer()
	memRate, memP99 := sendRun(b, mem, n, concurrency)
	mgRate, mgP99 := sendRun(b, mg, n, concurrency)
	b.StopTimer()
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(memRate, "memory-msgs/s")
	b.ReportMetric(mgRate, "mongo-msgs/s")
	b.ReportMetric(mgRate/memRate, "mongo/memory-msgs/s")
	b.ReportMetric(float64(memP99.Microseconds())/1000, "memory-p99-ms")
	b.ReportMetric(float64(mgP99.Microseconds())/1000, "mongo-p99-ms")
	b.ReportMetric(float64(mgP99)/float64(memP99), "mongo/memory-p99")
}

// dropBenchDatabase drops the database uri names.
func dropBenchDatabase(b *testing.B, uri string) {
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	c, err := driver.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(5 * time.Second))
	if err != nil {
		b.Logf("dropping the benchmark database: %v", err)
		return
	}
	defer func() { _ = c.Disconnect(ctx) }()
	u, _ := url.Parse(uri)
	if err := c.Database(strings.Trim(u.Path, "/")).Drop(ctx); err != nil {
		b.Logf("dropping the benchmark database: %v", err)
	}
}
