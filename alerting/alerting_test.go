package alerting_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/tidewatch/tidewatch/alerting/alertingtest"
	"github.com/tidewatch/tidewatch/store"
	"github.com/tidewatch/tidewatch/store/embedded"
)

func TestEmbedded(t *testing.T) {
	alertingtest.Run(t, func(t *testing.T, dir string) store.Store {
		db, err := embedded.Open(embedded.Config{Path: dir, Retention: model.Duration(24 * time.Hour)}, slog.New(slog.DiscardHandler), nil)
		if err != nil {
			t.Fatal(err)
		}
		return db
	})
}
