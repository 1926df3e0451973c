package clickhouse

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/prometheus/prometheus/model/labels"
)

// A queue record is one committed transaction:
//
//	byte     format version (1)
//	uvarint  number of entries
//	entry:   uint64 LE fingerprint
//	         byte 1 if the labels follow, 0 if an earlier record of the
//	              same segment holds them
//	         [uvarint count, then count × (uvarint len, name, uvarint len, value)]
//	         uvarint number of samples
//	         samples: varint timestamp delta (from 0 for the first), uint64 LE
//	                  value bits (so NaN payloads such as stale markers survive)
const recordVersion = 1

// entry is a run of samples of one series inside an appender.
type entry struct {
	fp         uint64
	ls         labels.Labels
	start, end int // indexes into the appender's ts and vs
}

func encodeRecord(buf []byte, entries []entry, ts []int64, vs []float64, defined func(uint64) bool, define func(uint64)) []byte {
	buf = append(buf, recordVersion)
	buf = binary.AppendUvarint(buf, uint64(len(entries)))
	for _, e := range entries {
		buf = binary.LittleEndian.AppendUint64(buf, e.fp)
		if defined(e.fp) {
			buf = append(buf, 0)
		} else {
			buf = append(buf, 1)
			buf = binary.AppendUvarint(buf, uint64(e.ls.Len()))
			e.ls.Range(func(l labels.Label) {
				buf = binary.AppendUvarint(buf, uint64(len(l.Name)))
				buf = append(buf, l.Name...)
				buf = binary.AppendUvarint(buf, uint64(len(l.Value)))
				buf = append(buf, l.Value...)
			})
			define(e.fp)
		}
		buf = binary.AppendUvarint(buf, uint64(e.end-e.start))
		prev := int64(0)
		for i := e.start; i < e.end; i++ {
			buf = binary.AppendVarint(buf, ts[i]-prev)
			prev = ts[i]
			buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(vs[i]))
		}
	}
	return buf
}

var errCorruptRecord = errors.New("corrupt queue record")

// recordDecoder walks a record's payload.
type recordDecoder struct {
	b   []byte
	err error
}

func (d *recordDecoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errCorruptRecord
		d.b = nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *recordDecoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errCorruptRecord
		d.b = nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *recordDecoder) uint64() uint64 {
	if len(d.b) < 8 {
		d.err = errCorruptRecord
		d.b = nil
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *recordDecoder) byte() byte {
	if len(d.b) < 1 {
		d.err = errCorruptRecord
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *recordDecoder) string() string {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		d.err = errCorruptRecord
		d.b = nil
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// decodeRecord adds the record's label definitions to defs and, when b is
// not nil, its samples to b.
func decodeRecord(payload []byte, defs map[uint64]seriesLabels, b *batch) error {
	d := recordDecoder{b: payload}
	if v := d.byte(); v != recordVersion {
		return fmt.Errorf("%w: format version %d", errCorruptRecord, v)
	}
	n := d.uvarint()
	for i := uint64(0); i < n && d.err == nil; i++ {
		fp := d.uint64()
		if d.byte() == 1 {
			cnt := d.uvarint()
			if cnt > uint64(len(d.b)) {
				return errCorruptRecord
			}
			sl := seriesLabels{names: make([]string, cnt), values: make([]string, cnt)}
			for j := range cnt {
				sl.names[j] = d.string()
				sl.values[j] = d.string()
				if sl.names[j] == labels.MetricName {
					sl.metricName = sl.values[j]
				}
			}
			defs[fp] = sl
		}
		cnt := d.uvarint()
		if cnt > uint64(len(d.b)) {
			return errCorruptRecord
		}
		if b == nil {
			for range cnt {
				d.varint()
				d.uint64()
			}
			continue
		}
		b.startSeries(fp, defs)
		t := int64(0)
		for range cnt {
			t += d.varint()
			b.add(fp, t, math.Float64frombits(d.uint64()))
		}
	}
	if d.err != nil {
		return d.err
	}
	if len(d.b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", errCorruptRecord, len(d.b))
	}
	return nil
}
