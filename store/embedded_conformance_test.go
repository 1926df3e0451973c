package store_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/tidewatch/tidewatch/store"
	"github.com/tidewatch/tidewatch/store/embedded"
	"github.com/tidewatch/tidewatch/store/storetest"
)

func openEmbedded(t *testing.T, dir string) store.Store {
	t.Helper()
	cfg := store.DefaultConfig
	cfg.Type = store.TypeEmbedded
	cfg.Embedded = embedded.DefaultConfig
	cfg.Embedded.Path = dir
	st, err := store.Open(cfg, slog.New(slog.DiscardHandler), nil, nil)
	if err != nil {
		t.Fatalf("open embedded store in %s: %v", dir, err)
	}
	return st
}

func TestEmbeddedConformance(t *testing.T) {
	storetest.Run(t, openEmbedded)
}

// With an out-of-order window the embedded store accepts older samples.
func TestEmbeddedConformanceOutOfOrderWindow(t *testing.T) {
	storetest.Run(t, func(t *testing.T, dir string) store.Store {
		cfg := store.Config{Type: store.TypeEmbedded, Embedded: embedded.DefaultConfig}
		cfg.Embedded.Path = dir
		cfg.Embedded.OutOfOrderTimeWindow = model.Duration(time.Hour)
		st, err := store.Open(cfg, slog.New(slog.DiscardHandler), nil, nil)
		if err != nil {
			t.Fatalf("open embedded store in %s: %v", dir, err)
		}
		return st
	}, storetest.WithOutOfOrder(storetest.OOOAccept))
}
