package clickhouse

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// The on-disk queue: every committed transaction is one record appended to
// the newest segment file of the queue directory before Commit returns; the
// writer reads records in order, inserts them into ClickHouse and then
// acknowledges their position, which is persisted in the cursor file.
// Segments entirely before the cursor are deleted.
//
// Files:
//
//	<dir>/<seq, 20 digits>.seg   records: uint32 LE payload length,
//	                             uint32 LE CRC-32C of the payload, payload
//	<dir>/cursor                 uint64 LE segment, int64 LE offset, CRC-32C
//
// A record is written with a single write(2), so after a crash of the
// process it is either complete or a torn tail that fails its length or CRC
// check; segments are fsynced when sealed and periodically (sync). A torn or
// corrupt record ends its segment: the reader logs it, counts the skipped
// bytes and goes on with the next segment.

const (
	segmentExt     = ".seg"
	cursorFile     = "cursor"
	recordHeader   = 8
	maxRecordSize  = 1 << 30
	maxSegmentSize = 64 << 20
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// position is a place in the queue: a segment and a byte offset in it.
type position struct {
	seg uint64
	off int64
}

func (p position) less(o position) bool {
	return p.seg < o.seg || (p.seg == o.seg && p.off < o.off)
}

type segment struct {
	seq  uint64
	size int64
}

// queue is the bounded on-disk queue. Appends may come from any goroutine;
// exactly one reader (the writer goroutine) consumes it.
type queue struct {
	dir     string
	maxSize int64
	segSize int64
	logger  *slog.Logger
	m       *storeMetrics

	mu      sync.Mutex
	segs    []segment // oldest first; the last one is being written
	active  *os.File
	defined map[uint64]struct{} // series whose labels the active segment holds
	size    int64               // bytes in all segment files
	dirty   bool                // written since the last fsync
	full    bool                // the last append was rejected for size
	closed  bool
	ack     position // everything before it is in ClickHouse
	// flushTarget is the newest write position a Flush waits for.
	flushTarget position
	ackedCh     chan struct{} // closed and replaced on every ack
	notify      chan struct{} // wakes the reader (capacity 1)
}

// Errors of the queue.
var (
	// ErrQueueFull rejects a commit that would grow the queue beyond
	// storage.clickhouse.queue.max_size.
	ErrQueueFull = errors.New("clickhouse disk queue is full")
	// ErrClosed rejects appends and flushes after Close.
	ErrClosed = errors.New("clickhouse store is closed")
)

// openQueue opens (or creates) the queue in dir and starts a new segment
// for this process' writes; older segments are replayed from the cursor.
func openQueue(dir string, maxSize int64, logger *slog.Logger, m *storeMetrics) (*queue, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create queue dir %s: %w", dir, err)
	}
	q := &queue{
		dir:     dir,
		maxSize: maxSize,
		segSize: min(maxSegmentSize, max(maxSize/8, 1<<20)),
		logger:  logger,
		m:       m,
		ackedCh: make(chan struct{}),
		notify:  make(chan struct{}, 1),
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list queue dir %s: %w", dir, err)
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, segmentExt) {
			continue
		}
		seq, err := strconv.ParseUint(strings.TrimSuffix(name, segmentExt), 10, 64)
		if err != nil {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return nil, fmt.Errorf("stat queue segment %s: %w", name, err)
		}
		q.segs = append(q.segs, segment{seq: seq, size: info.Size()})
	}
	slices.SortFunc(q.segs, func(a, b segment) int { return compareUint(a.seq, b.seq) })
	q.ack = q.readCursor()
	// Segments wholly before the cursor were inserted already.
	for len(q.segs) > 0 && q.segs[0].seq < q.ack.seg {
		if err := os.Remove(q.segPath(q.segs[0].seq)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("remove inserted queue segment: %w", err)
		}
		q.segs = q.segs[1:]
	}
	if len(q.segs) > 0 && q.ack.seg < q.segs[0].seq {
		q.ack = position{seg: q.segs[0].seq}
	}
	for _, s := range q.segs {
		q.size += s.size
	}
	next := uint64(1)
	if len(q.segs) > 0 {
		next = q.segs[len(q.segs)-1].seq + 1
	}
	if len(q.segs) == 0 && q.ack.seg >= next {
		next = q.ack.seg + 1
	}
	if err := q.startSegment(next); err != nil {
		return nil, err
	}
	if len(q.segs) == 1 {
		q.ack = position{seg: next}
	}
	q.flushTarget = q.ack
	q.updateGauges()
	return q, nil
}

func compareUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (q *queue) segPath(seq uint64) string {
	return filepath.Join(q.dir, fmt.Sprintf("%020d%s", seq, segmentExt))
}

// startSegment creates segment seq and makes it the active one. q.mu is
// held or q is not shared yet.
func (q *queue) startSegment(seq uint64) error {
	f, err := os.OpenFile(q.segPath(seq), os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("create queue segment: %w", err)
	}
	q.active = f
	q.segs = append(q.segs, segment{seq: seq})
	q.defined = make(map[uint64]struct{})
	return syncDir(q.dir)
}

// seal fsyncs and closes the active segment.
func (q *queue) seal() error {
	if q.active == nil {
		return nil
	}
	err := q.active.Sync()
	if cerr := q.active.Close(); err == nil {
		err = cerr
	}
	q.active = nil
	q.dirty = false
	if err != nil {
		return fmt.Errorf("seal queue segment: %w", err)
	}
	return nil
}

// encoder writes one record's payload into buf. defined reports whether the
// active segment holds a series' labels already; the encoder calls define
// for every series whose labels it writes.
type encoder func(buf []byte, defined func(fp uint64) bool, define func(fp uint64)) []byte

// append encodes a record with enc and appends it to the active segment.
// It returns ErrQueueFull when the queue would outgrow its bound.
func (q *queue) append(buf []byte, enc encoder) ([]byte, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return buf, ErrClosed
	}
	if q.active == nil {
		// An earlier rotation failed half-way.
		if err := q.startSegment(q.segs[len(q.segs)-1].seq + 1); err != nil {
			return buf, err
		}
	}
	if cur := &q.segs[len(q.segs)-1]; cur.size >= q.segSize {
		if err := q.seal(); err != nil {
			return buf, err
		}
		if err := q.startSegment(cur.seq + 1); err != nil {
			return buf, err
		}
	}
	var newly []uint64
	buf = append(buf[:0], make([]byte, recordHeader)...)
	buf = enc(buf,
		func(fp uint64) bool { _, ok := q.defined[fp]; return ok },
		func(fp uint64) { newly = append(newly, fp) })
	payload := len(buf) - recordHeader
	if payload > maxRecordSize {
		return buf, fmt.Errorf("queue record of %d bytes: larger than %d", payload, maxRecordSize)
	}
	if q.size+int64(len(buf)) > q.maxSize {
		if !q.full {
			q.logger.Error("disk queue is full: rejecting commits until clickhouse catches up",
				"path", q.dir, "size_bytes", q.size, "max_size_bytes", q.maxSize)
		}
		q.full = true
		q.updateGauges()
		return buf, ErrQueueFull
	}
	binary.LittleEndian.PutUint32(buf[0:4], uint32(payload))
	binary.LittleEndian.PutUint32(buf[4:8], crc32.Checksum(buf[recordHeader:], crcTable))
	cur := &q.segs[len(q.segs)-1]
	if n, err := q.active.Write(buf); err != nil {
		// Cut a partial record off so that the segment stays readable.
		if n > 0 {
			_ = q.active.Truncate(cur.size)
		}
		return buf, fmt.Errorf("write queue segment: %w", err)
	}
	for _, fp := range newly {
		q.defined[fp] = struct{}{}
	}
	cur.size += int64(len(buf))
	q.size += int64(len(buf))
	q.dirty = true
	q.updateGauges()
	select {
	case q.notify <- struct{}{}:
	default:
	}
	return buf, nil
}

// sync fsyncs the active segment if it was written since the last sync.
func (q *queue) sync() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.dirty || q.active == nil {
		return nil
	}
	q.dirty = false
	if err := q.active.Sync(); err != nil {
		return fmt.Errorf("fsync queue segment: %w", err)
	}
	return nil
}

// writePos is the end of everything appended so far.
func (q *queue) writePos() position {
	q.mu.Lock()
	defer q.mu.Unlock()
	cur := q.segs[len(q.segs)-1]
	return position{seg: cur.seq, off: cur.size}
}

// requestFlush records that a Flush waits for target and returns the
// channel closed on the next ack, and whether target is acked already.
func (q *queue) requestFlush(target position) (acked <-chan struct{}, done bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.ack.less(target) {
		return nil, true
	}
	if q.flushTarget.less(target) {
		q.flushTarget = target
	}
	select {
	case q.notify <- struct{}{}:
	default:
	}
	return q.ackedCh, false
}

// acked is the position up to which everything is in ClickHouse.
func (q *queue) acked() position {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.ack
}

// flushPending reports whether a Flush waits for data not acked yet.
func (q *queue) flushPending() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.ack.less(q.flushTarget)
}

// acknowledge records that everything before p is in ClickHouse: the cursor
// is persisted and segments before p's are deleted.
func (q *queue) acknowledge(p position) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.ack.less(p) {
		return nil
	}
	q.ack = p
	close(q.ackedCh)
	q.ackedCh = make(chan struct{})
	err := q.writeCursor(p)
	for len(q.segs) > 1 && q.segs[0].seq < p.seg {
		if rerr := os.Remove(q.segPath(q.segs[0].seq)); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = errors.Join(err, fmt.Errorf("remove inserted queue segment: %w", rerr))
			break
		}
		q.size -= q.segs[0].size
		q.segs = q.segs[1:]
	}
	// A fully inserted active segment of some size is replaced by a fresh
	// one so that its space is freed without waiting for more data.
	if cur := q.segs[len(q.segs)-1]; len(q.segs) == 1 && !q.closed && p.seg == cur.seq && p.off >= cur.size &&
		cur.size > 0 && (q.full || cur.size >= q.segSize/4) {
		if serr := q.seal(); serr != nil {
			err = errors.Join(err, serr)
		} else if serr := q.startSegment(cur.seq + 1); serr != nil {
			err = errors.Join(err, serr)
		} else if rerr := os.Remove(q.segPath(cur.seq)); rerr != nil {
			err = errors.Join(err, fmt.Errorf("remove inserted queue segment: %w", rerr))
		} else {
			q.size -= cur.size
			q.segs = q.segs[1:]
		}
	}
	if q.full && q.size < q.maxSize*9/10 {
		q.full = false
		q.logger.Info("disk queue accepts commits again", "path", q.dir, "size_bytes", q.size)
	}
	q.updateGauges()
	return err
}

// health is ErrQueueFull while commits are rejected for size.
func (q *queue) health() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.full {
		return fmt.Errorf("%w (%d of %d bytes, path %s)", ErrQueueFull, q.size, q.maxSize, q.dir)
	}
	return nil
}

// updateGauges publishes the queue's depth. q.mu is held.
func (q *queue) updateGauges() {
	if q.m == nil {
		return
	}
	pending := q.size
	for _, s := range q.segs {
		if s.seq < q.ack.seg {
			pending -= s.size
		} else if s.seq == q.ack.seg {
			pending -= min(q.ack.off, s.size)
		}
	}
	q.m.queueBytes.Set(float64(max(pending, 0)))
	q.m.queueFileBytes.Set(float64(q.size))
	q.m.queueSegments.Set(float64(len(q.segs)))
	full := 0.0
	if q.full {
		full = 1
	}
	q.m.queueFull.Set(full)
}

func (q *queue) readCursor() position {
	b, err := os.ReadFile(filepath.Join(q.dir, cursorFile))
	if err != nil || len(b) != 20 || crc32.Checksum(b[:16], crcTable) != binary.LittleEndian.Uint32(b[16:]) {
		if err == nil || !errors.Is(err, os.ErrNotExist) {
			// Replaying from the oldest segment duplicates rows, which
			// readers tolerate; skipping data would lose it.
			q.logger.Warn("queue cursor unreadable: replaying every segment", "path", q.dir, "err", err)
		}
		return position{}
	}
	return position{seg: binary.LittleEndian.Uint64(b[0:8]), off: int64(binary.LittleEndian.Uint64(b[8:16]))}
}

// writeCursor replaces the cursor file atomically. It is not fsynced: a
// cursor lost in a power failure only replays rows ClickHouse has.
func (q *queue) writeCursor(p position) error {
	var b [20]byte
	binary.LittleEndian.PutUint64(b[0:8], p.seg)
	binary.LittleEndian.PutUint64(b[8:16], uint64(p.off))
	binary.LittleEndian.PutUint32(b[16:20], crc32.Checksum(b[:16], crcTable))
	tmp := filepath.Join(q.dir, cursorFile+".tmp")
	if err := os.WriteFile(tmp, b[:], 0o644); err != nil {
		return fmt.Errorf("write queue cursor: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(q.dir, cursorFile)); err != nil {
		return fmt.Errorf("write queue cursor: %w", err)
	}
	return nil
}

// close seals the active segment; appends fail afterwards.
func (q *queue) close() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil
	}
	q.closed = true
	return q.seal()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open queue dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync queue dir: %w", err)
	}
	return nil
}

// queueReader reads records in order from the ack position on. It belongs
// to the writer goroutine.
type queueReader struct {
	q      *queue
	seg    uint64
	f      *os.File
	off    int64
	header [recordHeader]byte
	buf    []byte
	// labels of the series defined in the current segment so far.
	labels map[uint64]seriesLabels
}

type seriesLabels struct {
	names, values []string
	metricName    string
}

// errNoRecord means the reader is at the end of what was written.
var errNoRecord = errors.New("no record available")

func newQueueReader(q *queue) (*queueReader, error) {
	q.mu.Lock()
	start := q.ack
	q.mu.Unlock()
	r := &queueReader{q: q}
	if err := r.openSegment(start.seg); err != nil {
		return nil, err
	}
	// Collect the label definitions before the cursor: the records after
	// it refer to them.
	for r.off < start.off {
		payload, err := r.readRecord()
		if err != nil {
			break
		}
		if err := decodeRecord(payload, r.labels, nil); err != nil {
			break
		}
	}
	return r, nil
}

func (r *queueReader) openSegment(seq uint64) error {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
	r.seg, r.off = seq, 0
	r.labels = make(map[uint64]seriesLabels)
	f, err := os.Open(r.q.segPath(seq))
	if errors.Is(err, os.ErrNotExist) {
		return nil // deleted before it was read: nothing to replay
	}
	if err != nil {
		return fmt.Errorf("open queue segment: %w", err)
	}
	r.f = f
	return nil
}

// pos is the position after the last record read.
func (r *queueReader) pos() position { return position{seg: r.seg, off: r.off} }

// limits returns the current segment's readable size, whether it is still
// being written, and the next segment after it.
func (r *queueReader) limits() (size int64, active bool, next uint64, ok bool) {
	r.q.mu.Lock()
	defer r.q.mu.Unlock()
	for i, s := range r.q.segs {
		if s.seq == r.seg {
			if i == len(r.q.segs)-1 {
				return s.size, true, 0, true
			}
			return s.size, false, r.q.segs[i+1].seq, true
		}
		if s.seq > r.seg {
			return 0, false, s.seq, true
		}
	}
	return 0, false, 0, false
}

// next returns the payload of the next record (valid until the following
// call), moving on to newer segments as needed, or errNoRecord.
func (r *queueReader) next() ([]byte, error) {
	for {
		size, active, nextSeg, ok := r.limits()
		if !ok {
			return nil, errNoRecord
		}
		if r.f != nil && r.off < size {
			payload, err := r.readRecordWithin(size)
			if err == nil {
				return payload, nil
			}
			if active {
				return nil, err
			}
			r.q.logger.Error("corrupt queue segment: skipping its rest", "segment", r.q.segPath(r.seg), "offset", r.off, "skipped_bytes", size-r.off, "err", err)
			if r.q.m != nil {
				r.q.m.queueCorruptBytes.Add(int(size - r.off))
			}
		} else if active {
			return nil, errNoRecord
		}
		if err := r.openSegment(nextSeg); err != nil {
			return nil, err
		}
	}
}

func (r *queueReader) readRecord() ([]byte, error) {
	info, err := r.f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat queue segment: %w", err)
	}
	return r.readRecordWithin(info.Size())
}

// readRecordWithin reads the record at r.off if it lies within size bytes
// and passes its checks, and advances past it.
func (r *queueReader) readRecordWithin(size int64) ([]byte, error) {
	if size-r.off < recordHeader {
		return nil, fmt.Errorf("torn record header at offset %d", r.off)
	}
	if _, err := r.f.ReadAt(r.header[:], r.off); err != nil {
		return nil, fmt.Errorf("read queue record header: %w", err)
	}
	n := int64(binary.LittleEndian.Uint32(r.header[0:4]))
	if n > maxRecordSize || r.off+recordHeader+n > size {
		return nil, fmt.Errorf("torn record of %d bytes at offset %d", n, r.off)
	}
	r.buf = slices.Grow(r.buf[:0], int(n))[:n]
	if _, err := r.f.ReadAt(r.buf, r.off+recordHeader); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read queue record: %w", err)
	}
	if crc32.Checksum(r.buf, crcTable) != binary.LittleEndian.Uint32(r.header[4:8]) {
		return nil, fmt.Errorf("record at offset %d fails its checksum", r.off)
	}
	r.off += recordHeader + n
	return r.buf, nil
}

func (r *queueReader) close() {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
}
