package demo

import (
	"log/slog"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/config"
)

func TestWaveRate(t *testing.T) {
	w := Wave{Base: 35, Amplitude: 10, Period: 10 * time.Minute, Surge: 90, SurgeAt: time.Minute, SurgeFor: time.Minute, Ramp: 2 * time.Second}
	for _, tc := range []struct {
		name string
		at   time.Duration
		want float64
	}{
		{"starts at the trough", 0, 25},
		{"peaks at half a day", 5 * time.Minute, 45},
		{"ramps into the surge", 61 * time.Second, 25 + 10*(1-math.Cos(2*math.Pi*61/600)) + 45},
		{"full surge", 90 * time.Second, 35 - 10*math.Cos(2*math.Pi*90/600) + 90},
		{"after the surge", 3 * time.Minute, 35 - 10*math.Cos(2*math.Pi*180/600)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := w.Rate(tc.at); math.Abs(got-tc.want) > 1e-9 {
				t.Errorf("Rate(%s) = %g, want %g", tc.at, got, tc.want)
			}
		})
	}
}

// TestWriteIsValidConfig checks that the demo's rendered configuration and
// rules pass Tidewatch's own configuration loader.
func TestWriteIsValidConfig(t *testing.T) {
	dir := t.TempDir()
	file, err := Write(Files{Dir: dir, Listen: "127.0.0.1:9470", WebhookURL: "http://127.0.0.1:1/alerts",
		ServiceCommand: []string{"/bin/tidewatch", "demo", "service", "--listen", "127.0.0.1:{{.Port}}"}, BasePort: 18100})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(file, slog.New(slog.DiscardHandler))
	if err != nil {
		b, _ := os.ReadFile(file)
		t.Fatalf("demo config does not load: %v\n%s", err, b)
	}
	if len(cfg.Autoscaling.Policies) != 1 || cfg.Autoscaling.Policies[0].Name != "demo" {
		t.Errorf("policies = %+v, want one named demo", cfg.Autoscaling.Policies)
	}
	if !strings.HasPrefix(SDFile(dir), dir) {
		t.Errorf("SDFile(%q) = %q", dir, SDFile(dir))
	}
}
