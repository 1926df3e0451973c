package testinfra

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// HAProxy is an HAProxy (Debian package haproxy) on loopback whose built-in
// Prometheus exporter serves /metrics on MetricsURL, and which proxies
// FrontendAddr to the backend servers it was given.
type HAProxy struct {
	MetricsURL   string // http://127.0.0.1:port/metrics
	FrontendAddr string // 127.0.0.1:port
	Proc         *Process
}

// StartHAProxy starts HAProxy in the foreground with a frontend balancing
// over backends (host:port each) and a stats frontend serving the Prometheus
// exporter, and returns once /metrics answers 200.
func StartHAProxy(t testing.TB, backends ...string) *HAProxy {
	t.Helper()
	bin := Need(t, "haproxy", "haproxy")["haproxy"]
	dir := t.TempDir()
	metricsAddr := "127.0.0.1:" + strconv.Itoa(FreePort(t))
	frontAddr := "127.0.0.1:" + strconv.Itoa(FreePort(t))
	cfg := fmt.Sprintf(`# Written by tidewatch testinfra.
global
  maxconn 256

defaults
  mode http
  timeout connect 2s
  timeout client 10s
  timeout server 10s

frontend stats
  bind %s
  http-request use-service prometheus-exporter if { path /metrics }
  http-request return status 200 content-type text/plain string ok if { path /healthz }

frontend app
  bind %s
  default_backend app

backend app
  balance roundrobin
`, metricsAddr, frontAddr)
	for i, b := range backends {
		cfg += fmt.Sprintf("  server s%d %s\n", i, b)
	}
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatalf("write haproxy config: %v", err)
	}
	h := &HAProxy{MetricsURL: "http://" + metricsAddr + "/metrics", FrontendAddr: frontAddr}
	h.Proc = Start(t, "haproxy", []string{bin, "-f", path, "-db"}, WithDir(dir))
	waitReady(t, h.Proc, h.MetricsURL, nil)
	return h
}
