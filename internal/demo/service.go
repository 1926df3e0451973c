// Package demo is what `tidewatch demo` runs besides Tidewatch: a small
// HTTP service whose latency grows with its load (run as a fleet of local
// processes by the autoscaler's process backend), a load generator whose
// rate follows a compressed daily wave with a surge, and the demo's
// configuration and alert rules.
package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// ServiceOptions configure one demo service instance.
type ServiceOptions struct {
	Listen string
	// Capacity is the request rate (per second) at which the instance
	// saturates; latency is BaseLatency/(1-load/Capacity), capped.
	Capacity    float64
	BaseLatency time.Duration
	Logger      *slog.Logger
}

// service is one instance: it measures its own request rate and delays
// each answer as a queue at that utilisation would.
type service struct {
	o        ServiceOptions
	count    atomic.Int64
	rate     atomic.Uint64 // float64 bits: smoothed requests per second
	set      *metrics.Set
	requests *metrics.Counter
	latency  *metrics.PrometheusHistogram
	inflight atomic.Int64
}

// maxLatency caps the simulated latency.
const maxLatency = 2 * time.Second

// RunService serves one demo instance until ctx ends:
//
//	GET /work     a request whose latency grows with load
//	GET /healthz  "ok"
//	GET /metrics  Prometheus text format
func RunService(ctx context.Context, o ServiceOptions) error {
	if o.Capacity <= 0 {
		o.Capacity = 30
	}
	if o.BaseLatency <= 0 {
		o.BaseLatency = 20 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &service{o: o, set: metrics.NewSet()}
	s.requests = s.set.NewCounter(`demo_http_requests_total{path="/work"}`)
	s.latency = s.set.NewPrometheusHistogramExt(`demo_http_request_duration_seconds{path="/work"}`,
		[]float64{.01, .025, .05, .1, .2, .3, .5, 1, 2, 5})
	s.set.NewGauge(`demo_inflight_requests`, func() float64 { return float64(s.inflight.Load()) })
	s.set.NewGauge(`demo_load_rps`, func() float64 { return s.load() })
	s.set.NewGauge(`demo_capacity_rps`, func() float64 { return o.Capacity })

	mux := http.NewServeMux()
	mux.HandleFunc("/work", s.work)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		s.set.WritePrometheus(w)
	})
	l, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.Listen, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go s.measure(ctx)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	o.Logger.Info("demo service listening", "addr", l.Addr().String(), "capacity_rps", o.Capacity)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

func (s *service) load() float64 { return math.Float64frombits(s.rate.Load()) }

// measure keeps an exponentially smoothed request rate.
func (s *service) measure(ctx context.Context) {
	const every = 250 * time.Millisecond
	t := time.NewTicker(every)
	defer t.Stop()
	var last int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n := s.count.Load()
		rps := float64(n-last) / every.Seconds()
		last = n
		r := 0.8*s.load() + 0.2*rps
		s.rate.Store(math.Float64bits(r))
	}
}

func (s *service) latencyFor(load float64) time.Duration {
	u := math.Min(load/s.o.Capacity, 0.99)
	d := time.Duration(float64(s.o.BaseLatency) / (1 - u) * (0.8 + 0.4*rand.Float64()))
	return min(d, maxLatency)
}

func (s *service) work(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	s.count.Add(1)
	s.inflight.Add(1)
	defer s.inflight.Add(-1)
	select {
	case <-time.After(s.latencyFor(s.load())):
	case <-r.Context().Done():
		return
	}
	fmt.Fprintln(w, "done")
	s.requests.Inc()
	s.latency.UpdateDuration(start)
}
