package clickhouse

import (
	"errors"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
)

// appendSamples appends one record with one sample per series.
func appendSamples(t *testing.T, q *queue, t0 int64, v float64, series ...labels.Labels) {
	t.Helper()
	var entries []entry
	var ts []int64
	var vs []float64
	for i, ls := range series {
		entries = append(entries, entry{fp: labels.StableHash(ls), ls: ls, start: i, end: i + 1})
		ts = append(ts, t0)
		vs = append(vs, v)
	}
	_, err := q.append(nil, func(buf []byte, defined func(uint64) bool, define func(uint64)) []byte {
		return encodeRecord(buf, entries, ts, vs, defined, define)
	})
	if err != nil {
		t.Fatalf("append: %v", err)
	}
}

type readBack struct {
	ts     []int64
	vs     []float64
	series map[uint64]string // fp → labels of the series rows
}

// readAll reads every available record into a batch.
func readAll(t *testing.T, q *queue) (readBack, position) {
	t.Helper()
	r, err := newQueueReader(q)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	b := batch{pending: map[seriesHour]struct{}{}, seen: map[seriesHour]struct{}{}}
	for {
		p, err := r.next()
		if errors.Is(err, errNoRecord) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := decodeRecord(p, r.labels, &b); err != nil {
			t.Fatal(err)
		}
	}
	out := readBack{ts: b.ts, vs: b.vs, series: map[uint64]string{}}
	for i, fp := range b.sFps {
		bl := labels.NewScratchBuilder(0)
		for j := range b.sNames[i] {
			bl.Add(b.sNames[i][j], b.sValues[i][j])
		}
		out.series[fp] = bl.Labels().String()
	}
	return out, r.pos()
}

func openTestQueue(t *testing.T, dir string) *queue {
	t.Helper()
	q, err := openQueue(dir, 64<<20, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func lastSegment(t *testing.T, dir string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "*"+segmentExt))
	if len(m) == 0 {
		t.Fatal("no segment")
	}
	return m[len(m)-1]
}

func TestQueueRecovery(t *testing.T) {
	a := labels.FromStrings("__name__", "m", "k", "a")
	b := labels.FromStrings("__name__", "m", "k", "b")
	stale := math.Float64frombits(value.StaleNaN)
	cases := []struct {
		name string
		// damage changes the closed segment file of three records.
		damage func(t *testing.T, path string)
		want   int // records read back
	}{
		{"intact", func(*testing.T, string) {}, 3},
		{"torn header at the end", func(t *testing.T, path string) {
			f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			f.Write([]byte{1, 2, 3})
			f.Close()
		}, 3},
		{"torn record at the end", func(t *testing.T, path string) {
			b, _ := os.ReadFile(path)
			os.WriteFile(path, b[:len(b)-5], 0o644)
		}, 2},
		{"checksum mismatch in the second record", func(t *testing.T, path string) {
			b, _ := os.ReadFile(path)
			// The second record starts after the first one's header and payload.
			n := int(b[0]) | int(b[1])<<8
			b[recordHeader+n+recordHeader+3] ^= 0xff
			os.WriteFile(path, b, 0o644)
		}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			q := openTestQueue(t, dir)
			appendSamples(t, q, 1000, 1, a, b)
			appendSamples(t, q, 2000, stale, a, b) // a and b are defined already
			appendSamples(t, q, 3000, 3, a)
			if err := q.close(); err != nil {
				t.Fatal(err)
			}
			tc.damage(t, lastSegment(t, dir))
			q = openTestQueue(t, dir)
			defer q.close()
			got, _ := readAll(t, q)
			wantTs := []int64{1000, 1000, 2000, 2000, 3000}[:[]int{0, 2, 4, 5}[tc.want]]
			if len(got.ts) != len(wantTs) {
				t.Fatalf("read %d samples %v, want %v", len(got.ts), got.ts, wantTs)
			}
			for i := range wantTs {
				if got.ts[i] != wantTs[i] {
					t.Errorf("sample %d at %d, want %d", i, got.ts[i], wantTs[i])
				}
			}
			if tc.want >= 2 && math.Float64bits(got.vs[2]) != value.StaleNaN {
				t.Errorf("stale marker read back as %#x", math.Float64bits(got.vs[2]))
			}
			if got.series[labels.StableHash(a)] != a.String() || got.series[labels.StableHash(b)] != b.String() {
				t.Errorf("series rows %v, want a and b", got.series)
			}
		})
	}
}

// After an acknowledgement and a restart, reading resumes after the
// acknowledged records and still knows the labels defined before them.
func TestQueueResumeAfterAck(t *testing.T) {
	dir := t.TempDir()
	a := labels.FromStrings("__name__", "m", "k", "a")
	q := openTestQueue(t, dir)
	appendSamples(t, q, 1000, 1, a)
	appendSamples(t, q, 2000, 2, a)
	_, end := readAll(t, q)
	if err := q.acknowledge(end); err != nil {
		t.Fatal(err)
	}
	appendSamples(t, q, 3000, 3, a) // refers to the labels of the first record
	q.close()

	q = openTestQueue(t, dir)
	defer q.close()
	got, _ := readAll(t, q)
	if len(got.ts) != 1 || got.ts[0] != 3000 {
		t.Fatalf("resumed reading %v, want only the unacknowledged sample at 3000", got.ts)
	}
	if got.series[labels.StableHash(a)] != a.String() {
		t.Errorf("labels of a defined before the cursor: got %v", got.series)
	}
}

func TestQueueFull(t *testing.T) {
	dir := t.TempDir()
	q, err := openQueue(dir, 1<<20, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer q.close()
	big := labels.FromStrings("__name__", "m", "pad", string(make([]byte, 200<<10)))
	var full error
	for i := range 10 {
		_, err := q.append(nil, func(buf []byte, defined func(uint64) bool, define func(uint64)) []byte {
			// Labels every time: a new fingerprint per record.
			return encodeRecord(buf, []entry{{fp: uint64(i + 1), ls: big, start: 0, end: 1}}, []int64{1}, []float64{1}, defined, define)
		})
		if err != nil {
			full = err
			break
		}
	}
	if !errors.Is(full, ErrQueueFull) {
		t.Fatalf("appending 2 MiB to a 1 MiB queue: %v, want ErrQueueFull", full)
	}
	if err := q.health(); !errors.Is(err, ErrQueueFull) {
		t.Errorf("health = %v, want ErrQueueFull", err)
	}
	// Acknowledging everything frees the queue.
	_, end := readAll(t, q)
	if err := q.acknowledge(end); err != nil {
		t.Fatal(err)
	}
	appendSamples(t, q, 1, 1, labels.FromStrings("__name__", "small"))
	_, end = readAll(t, q)
	q.acknowledge(end)
	if err := q.health(); err != nil {
		t.Errorf("health after draining: %v", err)
	}
}
