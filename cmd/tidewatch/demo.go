package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/tidewatch/tidewatch/internal/config"
	"github.com/tidewatch/tidewatch/internal/demo"
)

// demoCommand runs the one-command demo: Tidewatch on an embedded store in
// --data, a fleet of demo service instances run by the process backend,
// a load generator with a daily-like wave and a surge, alert rules that
// deliver to a webhook receiver that logs, and an autoscaling policy.
// `tidewatch demo service --listen ADDR` is one demo instance.
func demoCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "service" {
		return demoServiceCommand(ctx, args[1:], stderr)
	}
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("web.listen-address", "127.0.0.1:9470", "Tidewatch's listen address")
	dataDir := fs.String("data", "data/demo", "directory for the demo's configuration and store (emptied at start)")
	basePort := fs.Int("base-port", 18100, "first port of the demo instances")
	duration := fs.Duration("duration", 0, "stop after this long (0: run until interrupted)")
	surgeAt := fs.Duration("surge-at", 45*time.Second, "when the load surge starts")
	surgeFor := fs.Duration("surge-for", 100*time.Second, "how long the surge lasts")
	period := fs.Duration("day", 10*time.Minute, "length of one compressed day of the load wave")
	dashOut := fs.String("dashboards-out", "dashboards-out", "write the Grafana dashboards of the demo here (empty: don't)")
	logLevel := fs.String("log.level", "warn", "Tidewatch's log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "demo: unexpected arguments %q\n", fs.Args())
		return 2
	}
	logger, err := newLogger(stderr, *logLevel, "logfmt")
	if err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 2
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "demo: find own executable: %v\n", err)
		return 1
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}

	// The webhook receiver: alerts arrive here and are printed.
	hookL, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintf(stderr, "demo: listen for the alert webhook: %v\n", err)
		return 1
	}
	var outMu sync.Mutex
	say := func(format string, a ...any) {
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Fprintf(stdout, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
	}
	hook := &http.Server{Handler: alertLogger(say), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hook.Serve(hookL) }()
	defer hook.Close()

	if err := os.RemoveAll(*dataDir); err != nil {
		fmt.Fprintf(stderr, "demo: empty %s: %v\n", *dataDir, err)
		return 1
	}
	cfgFile, err := demo.Write(demo.Files{
		Dir:            *dataDir,
		Listen:         *listen,
		WebhookURL:     "http://" + hookL.Addr().String() + "/alerts",
		ServiceCommand: []string{exe, "demo", "service", "--listen", "127.0.0.1:{{.Port}}"},
		BasePort:       *basePort,
	})
	if err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 1
	}
	if *dashOut != "" {
		if code := dashboardsGenerate([]string{"--config", cfgFile, "--out", *dashOut}, io.Discard, stderr); code != 0 {
			return code
		}
	}
	cfg, err := config.Load(cfgFile, logger)
	if err != nil {
		fmt.Fprintf(stderr, "demo: invalid demo configuration:\n%v\n", err)
		return 1
	}
	s, err := newServer(cfg, cfgFile, "", map[string]string{"demo": "true"}, logger)
	if err != nil {
		fmt.Fprintf(stderr, "demo: start: %v\n", err)
		return 1
	}

	wave := demo.Wave{Base: 35, Amplitude: 10, Period: *period, Surge: 90, SurgeAt: *surgeAt, SurgeFor: *surgeFor, Ramp: 2 * time.Second}
	abs, _ := filepath.Abs(*dataDir)
	gen := &demo.LoadGen{Wave: wave, SDFile: demo.SDFile(abs), Logger: logger.With("component", "loadgen")}
	genCtx, stopGen := context.WithCancel(ctx)
	genDone := make(chan struct{})
	go func() { defer close(genDone); gen.Run(genCtx) }()
	defer func() { stopGen(); <-genDone }()

	base := "http://" + *listen
	if h, p, err := net.SplitHostPort(*listen); err == nil && (h == "" || h == "0.0.0.0" || h == "::") {
		base = "http://localhost:" + p
	}
	fmt.Fprintf(stdout, `Tidewatch demo — config %s, store %s
  the fleet: 2 demo instances from port %d (process backend), load %.0f±%.0f req/s, +%.0f req/s surge at %s for %s
  UI:  %[9]s/autoscaler  %[9]s/alerts  %[9]s/targets  %[9]s/probes  %[9]s/rules  %[9]s/graph
  API: %[9]s/api/v1/autoscaler/decisions  %[9]s/api/v1/alerts  %[9]s/api/v1/query?query=up
  Grafana dashboards: %[10]s
  Ctrl-C stops Tidewatch and every demo instance.
`, cfgFile, filepath.Join(abs, "tsdb"), *basePort, wave.Base, wave.Amplitude, wave.Surge, *surgeAt, *surgeFor, base, cmp.Or(*dashOut, "not written"))
	go reportDecisions(ctx, s, say)
	if err := s.run(ctx, stdout); err != nil {
		logger.Error("tidewatch stopped with an error", "err", err)
		return 1
	}
	sent, failed := gen.Stats()
	say("demo stopped: %d requests sent, %d failed", sent, failed)
	return 0
}

// reportDecisions prints each scale action of the demo policy as it happens.
func reportDecisions(ctx context.Context, s *server, say func(string, ...any)) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	lastSeq := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ds := s.autoscaler.Decisions("demo", 20)
		for i := len(ds) - 1; i >= 0; i-- {
			d := ds[i]
			if d.Seq <= lastSeq {
				continue
			}
			lastSeq = d.Seq
			if d.Current != d.Desired {
				say("SCALE %s %d → %d (%s): %s", d.Policy, d.Current, d.Desired, d.Action, d.Reason())
			}
		}
	}
}

// alertLogger is the demo's webhook receiver: it prints each notification
// (the Alertmanager webhook payload).
func alertLogger(say func(string, ...any)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var msg struct {
			Status string `json:"status"`
			Alerts []struct {
				Status      string            `json:"status"`
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
			} `json:"alerts"`
		}
		if err := json.NewDecoder(r.Body).Decode(&msg); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, a := range msg.Alerts {
			var ls []string
			for k, v := range a.Labels {
				if k != "alertname" {
					ls = append(ls, k+"="+v)
				}
			}
			say("ALERT %s %s {%s}: %s", strings.ToUpper(a.Status), a.Labels["alertname"], strings.Join(ls, ", "), a.Annotations["summary"])
		}
		w.WriteHeader(http.StatusOK)
	})
}

func demoServiceCommand(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo service", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "listen address")
	capacity := fs.Float64("capacity", 30, "requests per second at which the instance saturates")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	logger, _ := newLogger(stderr, "info", "logfmt")
	err := demo.RunService(ctx, demo.ServiceOptions{Listen: *listen, Capacity: *capacity, Logger: logger})
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(stderr, "demo service: %v\n", err)
		return 1
	}
	return 0
}
