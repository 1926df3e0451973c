package autoscaler_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidewatch/tidewatch/autoscaler/backend/webhook"
)

// TestCheckBuildsChangedBackends: Check refuses a configuration whose
// backend cannot be built (its secret file is gone) without touching the
// running one, which ApplyConfig then keeps too.
func TestCheckBuildsChangedBackends(t *testing.T) {
	e := newEnv(t)
	m := e.manager(t)
	h := newHook(t, "s3cret")
	good := acceptanceConfig(t, h.srv.URL, true)
	if err := m.Check(good); err != nil {
		t.Fatalf("Check of a good config: %v", err)
	}
	if err := m.ApplyConfig(good); err != nil {
		t.Fatal(err)
	}
	bad := acceptanceConfig(t, h.srv.URL, false)
	missing := filepath.Join(t.TempDir(), "no-secret")
	cfg := *bad.Backends[0].Config.(*webhook.Config)
	cfg.SecretFile = missing
	bad.Backends[0].Config = &cfg
	err := m.Check(bad)
	if err == nil || !strings.Contains(err.Error(), "no-secret") {
		t.Fatalf("Check with a missing secret file: %v, want an error naming it", err)
	}
	if _, statErr := os.Stat(missing); !os.IsNotExist(statErr) {
		t.Errorf("Check created %s", missing)
	}
	if ps := m.Policies(); len(ps) != 1 || !ps[0].DryRun {
		t.Errorf("policies after a refused Check: %+v, want the running dry-run one", ps)
	}
}
