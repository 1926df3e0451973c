package testinfra

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// Alertmanager is an Alertmanager server (Debian package
// prometheus-alertmanager, version 0.25 on Debian 12) on loopback, with
// clustering off.
type Alertmanager struct {
	URL    string // http://127.0.0.1:port
	Addr   string // 127.0.0.1:port
	Dir    string // holds alertmanager.yml and data/
	Proc   *Process
	Amtool string // path of amtool, from the same package
}

// StartAlertmanager writes configYAML to a temp dir and starts Alertmanager
// on a free loopback port with its state there. It returns once /-/ready
// answers 200.
func StartAlertmanager(t testing.TB, configYAML string) *Alertmanager {
	t.Helper()
	bins := Need(t, "prometheus-alertmanager", "prometheus-alertmanager", "amtool")
	dir := t.TempDir()
	addr := "127.0.0.1:" + strconv.Itoa(FreePort(t))
	cfgPath := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfgPath, []byte(configYAML), 0o644); err != nil {
		t.Fatalf("write alertmanager config: %v", err)
	}
	am := &Alertmanager{URL: "http://" + addr, Addr: addr, Dir: dir, Amtool: bins["amtool"]}
	am.Proc = Start(t, "alertmanager", []string{
		bins["prometheus-alertmanager"],
		"--config.file=" + cfgPath,
		"--storage.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr,
		"--cluster.listen-address=",
	}, WithDir(dir))
	waitReady(t, am.Proc, am.URL+"/-/ready", nil)
	return am
}
