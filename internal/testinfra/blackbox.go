package testinfra

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// StartBlackboxExporter writes configYAML (a blackbox.yml with modules) to a
// temp dir, starts blackbox_exporter (Debian package
// prometheus-blackbox-exporter) on a free loopback port and returns its base
// URL (http://127.0.0.1:port) once /-/healthy answers 200. Probe with
// GET /probe?module=M&target=T.
func StartBlackboxExporter(t testing.TB, configYAML string) string {
	t.Helper()
	bin := Need(t, "prometheus-blackbox-exporter", "prometheus-blackbox-exporter")["prometheus-blackbox-exporter"]
	dir := t.TempDir()
	cfg := filepath.Join(dir, "blackbox.yml")
	if err := os.WriteFile(cfg, []byte(configYAML), 0o644); err != nil {
		t.Fatalf("write blackbox_exporter config: %v", err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(FreePort(t))
	p := Start(t, "blackbox-exporter", []string{bin, "--config.file=" + cfg, "--web.listen-address=" + addr}, WithDir(dir))
	url := "http://" + addr
	waitReady(t, p, url+"/-/healthy", nil)
	return url
}
