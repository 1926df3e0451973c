package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
)

// errEmptyLabels rejects a sample without labels.
var errEmptyLabels = errors.New("empty label set")

// appender buffers one transaction in memory; Commit writes it to the disk
// queue as one record.
type appender struct {
	s       *Store
	entries []entry
	ts      []int64
	vs      []float64
	buf     []byte
}

var _ storage.ExemplarAppenderV2 = (*appender)(nil)

var appenderPool = sync.Pool{New: func() any { return new(appender) }}

// AppenderV2 returns an appender; see the package documentation for what
// Commit guarantees.
func (s *Store) AppenderV2(context.Context) storage.AppenderV2 {
	a := appenderPool.Get().(*appender)
	a.s = s
	return a
}

// Append buffers a float sample. Native histograms are rejected with
// storage.ErrNativeHistogramsDisabled. ref, when not 0, must be a ref this
// store returned for ls. A sample at the timestamp of the newest one this
// process committed for the series is dropped when its value is the same
// and rejected with storage.ErrDuplicateSampleForTimestamp otherwise; older
// samples are accepted (ClickHouse has no out-of-order limit).
func (a *appender) Append(ref storage.SeriesRef, ls labels.Labels, _, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, _ storage.AppendV2Options) (storage.SeriesRef, error) {
	if h != nil || fh != nil {
		return 0, fmt.Errorf("append %s: %w (the clickhouse store keeps float samples only)", ls, storage.ErrNativeHistogramsDisabled)
	}
	fp := uint64(ref)
	if fp == 0 {
		if ls.IsEmpty() {
			return 0, errEmptyLabels
		}
		fp = labels.StableHash(ls)
	}
	bits := math.Float64bits(v)
	if n := len(a.entries); n > 0 && a.entries[n-1].fp == fp {
		// The same series again in this transaction (remote-write sends a
		// series' samples together).
		e := &a.entries[n-1]
		if lt := a.ts[e.end-1]; lt == t {
			if math.Float64bits(a.vs[e.end-1]) == bits {
				return storage.SeriesRef(fp), nil
			}
			return 0, storage.ErrDuplicateSampleForTimestamp
		}
		a.ts = append(a.ts, t)
		a.vs = append(a.vs, v)
		e.end++
		return storage.SeriesRef(fp), nil
	}
	if last, ok := a.s.last.get(fp); ok && last.t == t {
		if last.v == bits {
			return storage.SeriesRef(fp), nil
		}
		return 0, storage.ErrDuplicateSampleForTimestamp
	}
	a.entries = append(a.entries, entry{fp: fp, ls: ls, start: len(a.ts), end: len(a.ts) + 1})
	a.ts = append(a.ts, t)
	a.vs = append(a.vs, v)
	return storage.SeriesRef(fp), nil
}

// AppendExemplars drops exemplars: the ClickHouse store does not keep them.
func (a *appender) AppendExemplars(ref storage.SeriesRef, ls labels.Labels, es []exemplar.Exemplar) (storage.SeriesRef, error) {
	a.s.metrics.exemplarsDropped.Add(len(es))
	if ref == 0 {
		ref = storage.SeriesRef(labels.StableHash(ls))
	}
	return ref, nil
}

// Commit writes the transaction to the disk queue. It returns once the
// record is in the queue's segment file (see the package documentation);
// the insert into ClickHouse happens in the background.
func (a *appender) Commit() error {
	defer a.release()
	if len(a.ts) == 0 {
		return nil
	}
	var err error
	a.buf, err = a.s.queue.append(a.buf, func(buf []byte, defined func(uint64) bool, define func(uint64)) []byte {
		return encodeRecord(buf, a.entries, a.ts, a.vs, defined, define)
	})
	if err != nil {
		a.s.metrics.commitsRejected.Inc()
		a.s.metrics.samplesRejected.Add(len(a.ts))
		if errors.Is(err, ErrQueueFull) {
			a.s.metrics.errorOf(errKindQueue).Inc()
		}
		return fmt.Errorf("commit %d samples: %w", len(a.ts), err)
	}
	for _, e := range a.entries {
		a.s.last.update(e.fp, a.ts[e.end-1], math.Float64bits(a.vs[e.end-1]))
	}
	a.s.metrics.samplesCommitted.Add(len(a.ts))
	return nil
}

// Rollback discards the transaction.
func (a *appender) Rollback() error {
	a.release()
	return nil
}

func (a *appender) release() {
	clear(a.entries) // drop label references
	a.entries, a.ts, a.vs = a.entries[:0], a.ts[:0], a.vs[:0]
	if cap(a.ts) > 1<<20 || cap(a.buf) > 64<<20 {
		return // let an unusually large transaction's buffers go
	}
	a.s = nil
	appenderPool.Put(a)
}

// lastSamples remembers the newest committed sample of every series, to
// detect a duplicate timestamp with a different value as the TSDB head
// does. It is sharded to keep concurrent appenders apart.
type lastSamples struct {
	shards [64]lastShard
}

type lastShard struct {
	mu sync.Mutex
	m  map[uint64]lastSample
}

type lastSample struct {
	t    int64
	v    uint64 // value bits
	seen int64  // unix seconds of the last update, for pruning
}

func (l *lastSamples) shard(fp uint64) *lastShard { return &l.shards[fp%uint64(len(l.shards))] }

func (l *lastSamples) get(fp uint64) (lastSample, bool) {
	sh := l.shard(fp)
	sh.mu.Lock()
	s, ok := sh.m[fp]
	sh.mu.Unlock()
	return s, ok
}

func (l *lastSamples) update(fp uint64, t int64, v uint64) {
	sh := l.shard(fp)
	now := time.Now().Unix()
	sh.mu.Lock()
	if sh.m == nil {
		sh.m = make(map[uint64]lastSample)
	}
	if s, ok := sh.m[fp]; !ok || t >= s.t {
		sh.m[fp] = lastSample{t: t, v: v, seen: now}
	}
	sh.mu.Unlock()
}

// prune forgets series not appended to since before.
func (l *lastSamples) prune(before time.Time) {
	cut := before.Unix()
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		for fp, s := range sh.m {
			if s.seen < cut {
				delete(sh.m, fp)
			}
		}
		sh.mu.Unlock()
	}
}
