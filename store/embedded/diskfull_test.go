package embedded

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/tidewatch/tidewatch/internal/testinfra"
)

// mountTmpfs mounts a tmpfs of size under a temporary directory and returns
// it (testinfra.MountTmpfs).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "disk")
	testinfra.MountTmpfs(t, dir, size)
	return dir
}

// fillDisk writes path until the disk is full.
func fillDisk(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			return
		}
	}
}

// syncBuffer is a log sink safe for the TSDB's goroutines.
type syncBuffer struct {
	mtx sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mtx.Lock()
	defer b.mtx.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mtx.Lock()
	defer b.mtx.Unlock()
	return b.buf.String()
}

// sampleKey is one acknowledged sample.
type sampleKey struct {
	series string
	t      int64
}

// TestDiskFullKeepsAcknowledgedSamples fills the data disk under the store,
// frees it again, and checks that the store refused writes while it could
// not persist them, recovered by itself, and that a clean restart finds
// every acknowledged sample without any WAL corruption.
func TestDiskFullKeepsAcknowledgedSamples(t *testing.T) {
	disk := mountTmpfs(t, "8m")
	cfg := Config{Path: filepath.Join(disk, "data"), Retention: model.Duration(24 * time.Hour)}
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	db, err := Open(cfg, logger, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() }) // before the umount, also on a failure
	db.health.retryMin, db.health.retryMax = 10*time.Millisecond, 100*time.Millisecond

	const seriesPerBatch = 3000 // a samples record of several WAL pages
	acked := map[sampleKey]bool{}
	base := time.Now().Add(-time.Hour).UnixMilli()
	batch := 0
	// push appends one sample to each series and reports whether the
	// commit was acknowledged.
	push := func() bool {
		batch++
		ts := base + int64(batch)*1000
		app := db.AppenderV2(context.Background())
		for i := range seriesPerBatch {
			ls := labels.FromStrings("__name__", "diskfull_test", "series", strconv.Itoa(i))
			if _, err := app.Append(0, ls, 0, ts, rand.Float64(), nil, nil, storage.AOptions{}); err != nil {
				_ = app.Rollback()
				return false
			}
		}
		if err := app.Commit(); err != nil {
			return false
		}
		for i := range seriesPerBatch {
			acked[sampleKey{strconv.Itoa(i), ts}] = true
		}
		return true
	}

	for range 5 {
		if !push() {
			t.Fatalf("commit %d failed on an empty disk; health: %v", batch, db.Health())
		}
	}
	filler := filepath.Join(disk, "filler")
	fillDisk(t, filler)
	failed := false
	for range 20 {
		if !push() {
			failed = true
			break
		}
	}
	if !failed {
		t.Fatal("every commit succeeded on a full disk")
	}
	if err := db.Health(); !errors.Is(err, ErrDegraded) {
		t.Fatalf("Health() on a full disk = %v, want ErrDegraded", err)
	}
	db.mu.RLock()
	failedWrites := db.regs.walWritesFailed()
	db.mu.RUnlock()
	if failedWrites == 0 {
		t.Error("the WAL's failed writes are not seen: commits racing with a failed one would be acknowledged")
	}
	for range 3 {
		if push() {
			t.Fatal("a commit was acknowledged while the store is degraded")
		}
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for db.Health() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("the store stayed degraded a minute after the disk was freed: %v", db.Health())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for range 10 {
		if !push() {
			t.Fatalf("commit %d failed after the repair: %v", batch, db.Health())
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	var restart syncBuffer
	db, err = Open(cfg, slog.New(slog.NewTextHandler(&restart, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if s := restart.String(); strings.Contains(s, "corruption") || strings.Contains(s, "repair") {
		t.Errorf("the restart found a damaged WAL:\n%s", s)
	}
	q, err := db.Querier(0, base+int64(batch+1)*1000)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	found := map[sampleKey]bool{}
	ss := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "diskfull_test"))
	for ss.Next() {
		s := ss.At()
		name := s.Labels().Get("series")
		it := s.Iterator(nil)
		for it.Next() != chunkenc.ValNone {
			ts, _ := it.At()
			found[sampleKey{name, ts}] = true
		}
	}
	if err := ss.Err(); err != nil {
		t.Fatal(err)
	}
	lost := 0
	for k := range acked {
		if !found[k] {
			lost++
		}
	}
	t.Logf("%d batches, %d samples acknowledged, %d found after the restart, %d lost", batch, len(acked), len(found), lost)
	if lost > 0 {
		t.Errorf("%d of %d acknowledged samples are missing after the restart", lost, len(acked))
	}
	if !strings.Contains(logs.String(), "wal repaired") {
		t.Errorf("the log does not say the WAL was repaired:\n%s", logs.String())
	}
}

// A series reference from before a repair's reopen is not trusted: it may
// name another series in the rebuilt head, so the labels decide.
func TestReferenceFromBeforeReopen(t *testing.T) {
	db, err := Open(Config{Path: t.TempDir(), Retention: model.Duration(24 * time.Hour)}, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ts := time.Now().UnixMilli()
	a := labels.FromStrings("__name__", "ref_test", "series", "a")
	app := db.AppenderV2(context.Background())
	oldRef, err := app.Append(0, a, 0, ts, 1, nil, nil, storage.AOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}

	if err := db.reopen(); err != nil {
		t.Fatal(err)
	}

	b := labels.FromStrings("__name__", "ref_test", "series", "b")
	app = db.AppenderV2(context.Background())
	newRef, err := app.Append(oldRef, b, 0, ts+1000, 2, nil, nil, storage.AOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	if newRef == oldRef {
		t.Errorf("the appender after the reopen returned the old reference %d", oldRef)
	}
	q, err := db.Querier(0, ts+2000)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	got := map[string]int{}
	ss := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "ref_test"))
	for ss.Next() {
		it := ss.At().Iterator(nil)
		for it.Next() != chunkenc.ValNone {
			got[ss.At().Labels().Get("series")]++
		}
	}
	if want := map[string]int{"a": 1, "b": 1}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("samples per series = %v, want %v", got, want)
	}
}

// Appends and queries running while repairs reopen the TSDB neither fail
// unsafely nor lose an acknowledged sample (run with -race).
func TestReopenUnderLoad(t *testing.T) {
	cfg := Config{Path: t.TempDir(), Retention: model.Duration(24 * time.Hour)}
	db, err := Open(cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	base := time.Now().Add(-time.Hour).UnixMilli()
	const writers, reopens = 4, 5
	var (
		mtx      sync.Mutex
		acked    = map[sampleKey]bool{}
		attempts int
		wg       sync.WaitGroup
	)
	stop := make(chan struct{})
	for w := range writers {
		wg.Go(func() {
			var ref storage.SeriesRef
			ls := labels.FromStrings("__name__", "load_test", "writer", strconv.Itoa(w))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ts := base + int64(i) // 1 ms apart: retries during a repair are many
				app := db.AppenderV2(context.Background())
				r, err := app.Append(ref, ls, 0, ts, float64(i), nil, nil, storage.AOptions{})
				mtx.Lock()
				attempts++
				mtx.Unlock()
				if err != nil { // ErrRepairing
					_ = app.Rollback()
					continue
				}
				if app.Commit() == nil {
					ref = r
					mtx.Lock()
					acked[sampleKey{strconv.Itoa(w), ts}] = true
					mtx.Unlock()
				}
			}
		})
	}
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			q, err := db.Querier(base, math.MaxInt64)
			if err != nil {
				continue // ErrRepairing
			}
			ss := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "load_test"))
			for ss.Next() {
				it := ss.At().Iterator(nil)
				for it.Next() != chunkenc.ValNone {
				}
			}
			q.Close()
		}
	})
	// ackedNow counts the acknowledged samples so far.
	ackedNow := func() int {
		mtx.Lock()
		defer mtx.Unlock()
		return len(acked)
	}
	for range reopens {
		// Let some commits through between two repairs.
		for n := ackedNow(); ackedNow() < n+20; {
			time.Sleep(time.Millisecond)
		}
		if err := db.reopen(); err != nil {
			t.Fatal(err)
		}
	}
	for n := ackedNow(); ackedNow() < n+20; {
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db, err = Open(cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	q, err := db.Querier(base, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	found := map[sampleKey]bool{}
	ss := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "load_test"))
	for ss.Next() {
		w := ss.At().Labels().Get("writer")
		it := ss.At().Iterator(nil)
		for it.Next() != chunkenc.ValNone {
			ts, _ := it.At()
			found[sampleKey{w, ts}] = true
		}
	}
	lost := 0
	for k := range acked {
		if !found[k] {
			lost++
		}
	}
	t.Logf("%d of %d appends acknowledged across %d reopens, %d lost", len(acked), attempts, reopens, lost)
	if lost > 0 {
		t.Errorf("%d acknowledged samples lost", lost)
	}
}
