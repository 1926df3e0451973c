package autoscaler

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
)

func (m *Manager) instant(ctx context.Context, q string, t time.Time) (float64, error) {
	qry, err := m.o.Engine.NewInstantQuery(ctx, m.o.Queryable, nil, q, t)
	if err != nil {
		return 0, err
	}
	defer qry.Close()
	res := qry.Exec(ctx)
	if res.Err != nil {
		return 0, res.Err
	}
	return singleValue(res.Value)
}

// singleValue extracts the one number a policy query must return.
func singleValue(v any) (float64, error) {
	switch v := v.(type) {
	case promql.Scalar:
		return v.V, nil
	case promql.Vector:
		switch len(v) {
		case 0:
			return 0, ErrEmpty
		case 1:
			if v[0].H != nil {
				return 0, errors.New("query returned a histogram")
			}
			return v[0].F, nil
		default:
			return 0, fmt.Errorf("query returned %d series; aggregate them (sum, avg, max)", len(v))
		}
	default:
		return 0, fmt.Errorf("query returned a %T, not a number", v)
	}
}

func (m *Manager) rangeQuery(ctx context.Context, q string, start, end time.Time, step time.Duration) ([]Point, error) {
	pts, err := RangePoints(ctx, m.o.Engine, m.o.Queryable, q, start, end, step)
	if err == nil && len(pts) == 0 {
		err = errors.New("range query returned no series")
	}
	return pts, err
}

// RangePoints runs a range query that must return at most one series and
// gives its points (none when the query returns nothing).
func RangePoints(ctx context.Context, engine *promql.Engine, q storage.Queryable, query string, start, end time.Time, step time.Duration) ([]Point, error) {
	qry, err := engine.NewRangeQuery(ctx, q, nil, query, start, end, step)
	if err != nil {
		return nil, err
	}
	defer qry.Close()
	res := qry.Exec(ctx)
	if res.Err != nil {
		return nil, res.Err
	}
	mat, ok := res.Value.(promql.Matrix)
	if !ok {
		return nil, fmt.Errorf("not a matrix: %T", res.Value)
	}
	switch len(mat) {
	case 0:
		return nil, nil
	case 1:
	default:
		return nil, fmt.Errorf("returns %d series; aggregate them (sum, avg, max)", len(mat))
	}
	pts := make([]Point, 0, len(mat[0].Floats))
	for _, p := range mat[0].Floats {
		pts = append(pts, Point{T: time.UnixMilli(p.T), V: p.F})
	}
	return pts, nil
}
