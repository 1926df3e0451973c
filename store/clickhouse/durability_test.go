package clickhouse_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/tidewatch/tidewatch/internal/testinfra"
	"github.com/tidewatch/tidewatch/store/clickhouse"
)

// ingester appends one sample to each of its series per round, value =
// round, timestamp = base + round seconds, and counts what was committed.
type ingester struct {
	series []labels.Labels
	base   int64

	mu        sync.Mutex
	rounds    int // committed rounds
	rejected  int
	lastError error
}

func newIngester(prefix string, n int, base int64) *ingester {
	in := &ingester{base: base}
	for i := range n {
		in.series = append(in.series, labels.FromStrings("__name__", prefix, "series", fmt.Sprintf("%03d", i)))
	}
	return in
}

// round appends and commits one round; a rejected commit is counted and
// retried by the next call with the same round number.
func (in *ingester) round(st *clickhouse.Store) error {
	in.mu.Lock()
	r := in.rounds
	in.mu.Unlock()
	app := st.AppenderV2(context.Background())
	for _, ls := range in.series {
		if _, err := app.Append(0, ls, 0, in.base+int64(r)*1000, float64(r), nil, nil, storage.AppendV2Options{}); err != nil {
			app.Rollback()
			return err
		}
	}
	err := app.Commit()
	in.mu.Lock()
	defer in.mu.Unlock()
	if err != nil {
		in.rejected++
		in.lastError = err
		return err
	}
	in.rounds++
	return nil
}

func (in *ingester) committed() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.rounds
}

// checkExactly queries every series and requires exactly rounds samples,
// values 0…rounds-1 at their timestamps: nothing lost, nothing doubled.
func checkExactly(t *testing.T, st *clickhouse.Store, in *ingester, rounds int) {
	t.Helper()
	q, err := st.Querier(in.base, in.base+int64(rounds)*1000)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	set := q.Select(context.Background(), true, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", in.series[0].Get("__name__")))
	got := 0
	for set.Next() {
		s := set.At()
		it := s.Iterator(nil)
		n := 0
		for it.Next() == chunkenc.ValFloat {
			ts, v := it.At()
			if ts != in.base+int64(n)*1000 || v != float64(n) {
				t.Fatalf("%s: sample %d is %d=%v, want %d=%d", s.Labels(), n, ts, v, in.base+int64(n)*1000, n)
			}
			n++
		}
		if n != rounds {
			t.Errorf("%s: %d samples, want %d", s.Labels(), n, rounds)
		}
		got++
	}
	if err := set.Err(); err != nil {
		t.Fatal(err)
	}
	if got != len(in.series) {
		t.Errorf("%d series, want %d", got, len(in.series))
	}
}

func flushWithin(t *testing.T, st *clickhouse.Store, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := st.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
}

// TestOutage stops ClickHouse for 30 s under steady ingest: commits keep
// succeeding into the disk queue, and once the server is back every
// sample arrives exactly once.
func TestOutage(t *testing.T) {
	t.Parallel()
	const outage = 30 * time.Second
	srv := testinfra.StartClickHouse(t)
	cfg := testConfig(srv, t.TempDir())
	st := openStore(t, cfg)
	defer st.Close()
	in := newIngester("outage_test", 50, 1_700_000_000_000)

	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				done <- nil
				return
			case <-tick.C:
				if err := in.round(st); err != nil {
					done <- err
					return
				}
			}
		}
	}()
	// Some data reaches ClickHouse before the outage.
	for in.committed() < 20 {
		select {
		case err := <-done:
			t.Fatalf("ingest: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	flushWithin(t, st, 30*time.Second)
	srv.Stop()
	before := in.committed()
	select {
	case err := <-done:
		t.Fatalf("ingest during the outage: %v", err)
	case <-time.After(outage):
	}
	if err := st.Health(); err != nil {
		t.Errorf("health during the outage (the queue has room): %v", err)
	}
	// Flush cannot finish while the server is down.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	if err := st.Flush(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("flush during the outage: %v, want a deadline error", err)
	}
	cancel()
	during := in.committed() - before
	srv.Start()
	// Ingest goes on for a while after the restart.
	target := in.committed() + 20
	for in.committed() < target {
		select {
		case err := <-done:
			t.Fatalf("ingest after the outage: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	flushWithin(t, st, 2*time.Minute)
	rounds := in.committed()
	t.Logf("%d rounds of %d series committed, %d during the %s outage", rounds, len(in.series), during, outage)
	if during == 0 {
		t.Fatal("no commit succeeded during the outage")
	}
	checkExactly(t, st, in, rounds)
	if m := metricValue(st, "tidewatch_clickhouse_insert_retried_batches_total"); m < 1 {
		t.Errorf("retried batches = %v, want at least 1", m)
	}
}

// metricValue reads one self-metric of st.
func metricValue(st *clickhouse.Store, name string) float64 {
	var b strings.Builder
	st.MetricsSet().WritePrometheus(&b)
	for line := range strings.Lines(b.String()) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), " "); ok && k == name {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return -1
}

// killHelperEnv makes TestKillHelper act: it names the ClickHouse address
// and queue dir to use.
const killHelperEnv = "TIDEWATCH_CLICKHOUSE_KILL_HELPER"

// TestKillHelper is the process TestSIGKILL kills: it commits rounds into
// the store (whose ClickHouse is down) and records each committed round in
// a file, then waits to be killed.
func TestKillHelper(t *testing.T) {
	spec := os.Getenv(killHelperEnv)
	if spec == "" {
		t.Skip("helper process of TestSIGKILL")
	}
	addr, dir, _ := strings.Cut(spec, ",")
	cfg := clickhouse.DefaultConfig
	cfg.Addresses = []string{addr}
	cfg.Database = "killtest"
	cfg.Retention = 0
	cfg.Queue.Path = filepath.Join(dir, "queue")
	st, err := clickhouse.Open(cfg, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	in := newIngester("kill_test", 20, 1_700_000_000_000)
	for range 200 {
		if err := in.round(st); err != nil {
			t.Fatal(err)
		}
		// Written after Commit returned: what the parent may count on.
		if err := os.WriteFile(filepath.Join(dir, "committed.tmp"), []byte(strconv.Itoa(in.committed())), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, "committed.tmp"), filepath.Join(dir, "committed")); err != nil {
			t.Fatal(err)
		}
	}
	select {} // until SIGKILL
}

// TestSIGKILL kills a process holding committed samples in its disk queue
// (ClickHouse is down) with SIGKILL; a new store on the same queue inserts
// all of them once ClickHouse is back.
func TestSIGKILL(t *testing.T) {
	t.Parallel()
	srv := testinfra.StartClickHouse(t)
	srv.Stop()
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), killHelperEnv+"="+srv.Addr+","+dir)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	committed := 0
	for committed < 200 {
		select {
		case err := <-exited:
			t.Fatalf("helper exited early: %v\n%s", err, out.String())
		case <-time.After(50 * time.Millisecond):
		}
		b, err := os.ReadFile(filepath.Join(dir, "committed"))
		if err == nil {
			committed, _ = strconv.Atoi(string(b))
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-exited
	// The helper may have committed one more round than it recorded.
	b, _ := os.ReadFile(filepath.Join(dir, "committed"))
	committed, _ = strconv.Atoi(string(b))
	t.Logf("helper killed after committing %d rounds", committed)

	srv.Start()
	cfg := clickhouse.DefaultConfig
	cfg.Addresses = []string{srv.Addr}
	cfg.Database = "killtest"
	cfg.Retention = 0
	cfg.Queue.Path = filepath.Join(dir, "queue")
	st := openStore(t, cfg)
	defer st.Close()
	flushWithin(t, st, time.Minute)
	in := newIngester("kill_test", 20, 1_700_000_000_000)
	checkExactly(t, st, in, committed)
}
