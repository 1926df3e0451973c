package testinfra

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Prometheus is a Prometheus server (Debian package prometheus) on loopback.
type Prometheus struct {
	URL      string // http://127.0.0.1:port
	Addr     string // 127.0.0.1:port
	Dir      string // holds prometheus.yml and data/; put rule files here
	Proc     *Process
	Promtool string // path of promtool
}

// AddrPlaceholder in a config given to StartPrometheus is replaced by the
// server's own listen address, so that a config can scrape Prometheus itself.
const AddrPlaceholder = "{{.Addr}}"

// StartPrometheus writes configYAML (with AddrPlaceholder replaced) to a temp
// dir and starts Prometheus on a free loopback port with its TSDB there and
// extraArgs appended (e.g. --web.enable-remote-write-receiver). It returns
// once /-/ready answers 200.
func StartPrometheus(t testing.TB, configYAML string, extraArgs ...string) *Prometheus {
	t.Helper()
	bins := Need(t, "prometheus", "prometheus", "promtool")
	dir := t.TempDir()
	addr := "127.0.0.1:" + strconv.Itoa(FreePort(t))
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(strings.ReplaceAll(configYAML, AddrPlaceholder, addr)), 0o644); err != nil {
		t.Fatalf("write prometheus config: %v", err)
	}
	cmd := append([]string{
		bins["prometheus"],
		"--config.file=" + cfgPath,
		"--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr,
		"--storage.remote.flush-deadline=2s",
	}, extraArgs...)
	p := &Prometheus{URL: "http://" + addr, Addr: addr, Dir: dir, Promtool: bins["promtool"]}
	p.Proc = Start(t, "prometheus", cmd, WithDir(dir))
	waitReady(t, p.Proc, p.URL+"/-/ready", nil)
	return p
}

// Promtool returns the path of promtool (Debian package prometheus).
func Promtool(t testing.TB) string {
	t.Helper()
	return Need(t, "prometheus", "promtool")["promtool"]
}

// StartNodeExporter starts node_exporter (Debian package
// prometheus-node-exporter) on a free loopback port and returns its base
// URL (http://127.0.0.1:port) once /metrics answers 200.
func StartNodeExporter(t testing.TB) string {
	t.Helper()
	bin := Need(t, "prometheus-node-exporter", "prometheus-node-exporter")["prometheus-node-exporter"]
	addr := "127.0.0.1:" + strconv.Itoa(FreePort(t))
	p := Start(t, "node-exporter", []string{bin, "--web.listen-address=" + addr, "--no-collector.systemd"})
	url := "http://" + addr
	waitReady(t, p, url+"/metrics", nil)
	return url
}
