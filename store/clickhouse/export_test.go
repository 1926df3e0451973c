package clickhouse

import (
	"context"
	"time"
)

// SetLiteralFingerprints changes how many fingerprints a samples query
// lists literally before it switches to a subquery.
func (s *Store) SetLiteralFingerprints(n int) { s.literalFingerprints = n }

// DropExpired runs the retention of servers without TTL as of now.
func (s *Store) DropExpired(ctx context.Context, now time.Time) error {
	sch, err := s.ensureSchema(ctx)
	if err != nil {
		return err
	}
	return s.dropExpired(ctx, sch, now)
}
