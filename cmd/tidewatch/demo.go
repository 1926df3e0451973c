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

	"github.com/tidewatch/tidewatch/app"
	"github.com/tidewatch/tidewatch/autoscaler"
	"github.com/tidewatch/tidewatch/config"
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
	o, code := parseDemoFlags(args, stderr)
	if code >= 0 {
		return code
	}
	logger, err := newLogger(stderr, o.logLevel, "logfmt")
	if err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 2
	}
	if o.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}
	say := sayer(stdout)
	hookURL, stopHook, err := startAlertHook(say)
	if err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 1
	}
	defer stopHook()
	cfgFile, err := writeDemoFiles(o, hookURL, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 1
	}
	cfg, err := config.Load(cfgFile, logger)
	if err != nil {
		fmt.Fprintf(stderr, "demo: invalid demo configuration:\n%v\n", err)
		return 1
	}
	s, err := app.New(cfg, app.Options{Logger: logger, File: cfgFile, Flags: map[string]string{"demo": "true"}})
	if err != nil {
		fmt.Fprintf(stderr, "demo: start: %v\n", err)
		return 1
	}
	wave := demo.Wave{Base: 35, Amplitude: 10, Period: o.period, Surge: 90, SurgeAt: o.surgeAt, SurgeFor: o.surgeFor, Ramp: 2 * time.Second}
	abs, _ := filepath.Abs(o.dataDir)
	gen := &demo.LoadGen{Wave: wave, SDFile: demo.SDFile(abs), Logger: logger.With("component", "loadgen")}
	genCtx, stopGen := context.WithCancel(ctx)
	genDone := make(chan struct{})
	go func() { defer close(genDone); gen.Run(genCtx) }()
	defer func() { stopGen(); <-genDone }()

	printDemoBanner(stdout, o, cfgFile, abs, wave)
	go reportDecisions(ctx, s.Autoscaler(), say)
	if err := s.Run(ctx, stdout); err != nil {
		logger.Error("tidewatch stopped with an error", "err", err)
		return 1
	}
	sent, failed := gen.Stats()
	say("demo stopped: %d requests sent, %d failed", sent, failed)
	return 0
}

// demoOptions are the demo's flags.
type demoOptions struct {
	listen, dataDir, dashOut, logLevel  string
	basePort                            int
	duration, surgeAt, surgeFor, period time.Duration
}

// parseDemoFlags returns the options, or an exit code >= 0 to stop with.
func parseDemoFlags(args []string, stderr io.Writer) (demoOptions, int) {
	var o demoOptions
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.listen, "web.listen-address", "127.0.0.1:9470", "Tidewatch's listen address")
	fs.StringVar(&o.dataDir, "data", "data/demo", "directory for the demo's configuration and store (emptied at start)")
	fs.IntVar(&o.basePort, "base-port", 18100, "first port of the demo instances")
	fs.DurationVar(&o.duration, "duration", 0, "stop after this long (0: run until interrupted)")
	fs.DurationVar(&o.surgeAt, "surge-at", 45*time.Second, "when the load surge starts")
	fs.DurationVar(&o.surgeFor, "surge-for", 100*time.Second, "how long the surge lasts")
	fs.DurationVar(&o.period, "day", 10*time.Minute, "length of one compressed day of the load wave")
	fs.StringVar(&o.dashOut, "dashboards-out", "dashboards-out", "write the Grafana dashboards of the demo here (empty: don't)")
	fs.StringVar(&o.logLevel, "log.level", "warn", "Tidewatch's log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return o, 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "demo: unexpected arguments %q\n", fs.Args())
		return o, 2
	}
	return o, -1
}

// sayer prints timestamped lines, one at a time.
func sayer(w io.Writer) func(string, ...any) {
	var mtx sync.Mutex
	return func(format string, a ...any) {
		mtx.Lock()
		defer mtx.Unlock()
		fmt.Fprintf(w, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
	}
}

// startAlertHook serves the webhook receiver that prints the alerts it gets.
func startAlertHook(say func(string, ...any)) (url string, stop func(), err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("listen for the alert webhook: %w", err)
	}
	hook := &http.Server{Handler: alertLogger(say), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hook.Serve(l) }()
	return "http://" + l.Addr().String() + "/alerts", func() { hook.Close() }, nil
}

// writeDemoFiles empties the data directory and writes the demo's
// configuration (and, if asked, its dashboards); it returns the config file.
func writeDemoFiles(o demoOptions, hookURL string, stderr io.Writer) (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find own executable: %w", err)
	}
	if err := os.RemoveAll(o.dataDir); err != nil {
		return "", fmt.Errorf("empty %s: %w", o.dataDir, err)
	}
	cfgFile, err := demo.Write(demo.Files{
		Dir:            o.dataDir,
		Listen:         o.listen,
		WebhookURL:     hookURL,
		ServiceCommand: []string{exe, "demo", "service", "--listen", "127.0.0.1:{{.Port}}"},
		BasePort:       o.basePort,
	})
	if err != nil {
		return "", err
	}
	if o.dashOut != "" {
		if code := dashboardsGenerate([]string{"--config", cfgFile, "--out", o.dashOut}, io.Discard, stderr); code != 0 {
			return "", fmt.Errorf("write the dashboards to %s failed", o.dashOut)
		}
	}
	return cfgFile, nil
}

func printDemoBanner(stdout io.Writer, o demoOptions, cfgFile, abs string, wave demo.Wave) {
	base := "http://" + o.listen
	if h, p, err := net.SplitHostPort(o.listen); err == nil && (h == "" || h == "0.0.0.0" || h == "::") {
		base = "http://localhost:" + p
	}
	fmt.Fprintf(stdout, `Tidewatch demo — config %s, store %s
  the fleet: 2 demo instances from port %d (process backend), load %.0f±%.0f req/s, +%.0f req/s surge at %s for %s
  UI:  %[9]s/autoscaler  %[9]s/alerts  %[9]s/targets  %[9]s/probes  %[9]s/rules  %[9]s/graph
  API: %[9]s/api/v1/autoscaler/decisions  %[9]s/api/v1/alerts  %[9]s/api/v1/query?query=up
  Grafana dashboards: %[10]s
  Ctrl-C stops Tidewatch and every demo instance.
`, cfgFile, filepath.Join(abs, "tsdb"), o.basePort, wave.Base, wave.Amplitude, wave.Surge, o.surgeAt, o.surgeFor, base, cmp.Or(o.dashOut, "not written"))
}

// reportDecisions prints each scale action of the demo policy as it happens.
func reportDecisions(ctx context.Context, as *autoscaler.Manager, say func(string, ...any)) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	lastSeq := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ds := as.Decisions("demo", 20)
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
