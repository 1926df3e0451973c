package demo

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Wave is the load generator's request rate over time: a compressed daily
// wave (one "day" per Period) plus a surge between SurgeAt and
// SurgeAt+SurgeFor.
type Wave struct {
	Base, Amplitude float64 // requests per second
	Period          time.Duration
	Surge           float64 // extra requests per second during the surge
	SurgeAt         time.Duration
	SurgeFor        time.Duration
	// Ramp is how long the surge takes to build up and to die down.
	Ramp time.Duration
}

// Rate is the request rate at elapsed time since the start.
func (w Wave) Rate(elapsed time.Duration) float64 {
	// The day starts at its trough and rises: -cos.
	r := w.Base - w.Amplitude*math.Cos(2*math.Pi*elapsed.Seconds()/w.Period.Seconds())
	if w.Surge > 0 {
		in := elapsed - w.SurgeAt
		out := w.SurgeAt + w.SurgeFor - elapsed
		f := 0.0
		if in > 0 && out > 0 {
			f = 1
			if w.Ramp > 0 {
				f = math.Min(1, math.Min(in.Seconds(), out.Seconds())/w.Ramp.Seconds())
			}
		}
		r += f * w.Surge
	}
	return math.Max(r, 0)
}

// LoadGen sends GET /work to the instances listed in a file_sd file, round
// robin, at the wave's rate (open loop: a slow answer does not slow it).
type LoadGen struct {
	Wave   Wave
	SDFile string
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	sent, errors atomic.Int64
}

// Stats reports how many requests were sent and how many failed.
func (g *LoadGen) Stats() (sent, failed int64) { return g.sent.Load(), g.errors.Load() }

// Run generates load until ctx ends.
func (g *LoadGen) Run(ctx context.Context) {
	now := g.Now
	if now == nil {
		now = time.Now
	}
	logger := g.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	start := now()
	const tick = 50 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	var (
		targets  []string
		readAt   time.Time
		owed     float64
		next     int
		wg       sync.WaitGroup
		lastLogs time.Time
	)
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if now().Sub(readAt) >= time.Second {
			if ts, err := readTargets(g.SDFile); err == nil {
				targets = ts
			}
			readAt = now()
		}
		elapsed := now().Sub(start)
		rate := g.Wave.Rate(elapsed)
		if now().Sub(lastLogs) >= 15*time.Second {
			logger.Info("load", "elapsed", elapsed.Round(time.Second), "rps", math.Round(rate), "instances", len(targets))
			lastLogs = now()
		}
		if len(targets) == 0 {
			continue
		}
		owed += rate * tick.Seconds()
		for ; owed >= 1; owed-- {
			url := "http://" + targets[next%len(targets)] + "/work"
			next++
			g.sent.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				resp, err := client.Do(req)
				if err != nil {
					g.errors.Add(1)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					g.errors.Add(1)
				}
			}()
		}
	}
}

// readTargets returns every target address in a file_sd JSON file.
func readTargets(file string) ([]string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var groups []struct {
		Targets []string `json:"targets"`
	}
	if err := json.Unmarshal(b, &groups); err != nil {
		return nil, err
	}
	var out []string
	for _, g := range groups {
		out = append(out, g.Targets...)
	}
	return out, nil
}
