package clickhouse_test

import (
	"testing"

	"github.com/tidewatch/tidewatch/alerting/alertingtest"
	"github.com/tidewatch/tidewatch/internal/testinfra"
	"github.com/tidewatch/tidewatch/store"
)

// TestAlerting runs the rule-evaluation suite (recording rules feeding
// alerting rules, templating, for/keep_firing_for, restart restoring alert
// state) on the ClickHouse store, as it runs on the embedded one.
func TestAlerting(t *testing.T) {
	srv := testinfra.StartClickHouse(t)
	alertingtest.Run(t, func(t *testing.T, dir string) store.Store {
		return openStore(t, testConfig(srv, dir))
	})
}
