package clickhouse_test

import (
	"testing"

	"github.com/tidewatch/tidewatch/internal/testinfra"
	"github.com/tidewatch/tidewatch/store"
	"github.com/tidewatch/tidewatch/store/clickhouse"
	"github.com/tidewatch/tidewatch/store/storetest"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	srv := testinfra.StartClickHouse(t)
	for _, tc := range []struct {
		name string
		// literal is how many fingerprints a samples query lists before it
		// uses a subquery on the series table.
		literal int
	}{
		{"literal fingerprints", 5000},
		{"fingerprint subquery", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T, dir string) store.Store {
				st := openStore(t, testConfig(srv, dir))
				st.SetLiteralFingerprints(tc.literal)
				return st
			}, storetest.WithoutNativeHistograms(), storetest.WithOutOfOrder(storetest.OOOAccept))
		})
	}
}

var _ store.Store = (*clickhouse.Store)(nil)
