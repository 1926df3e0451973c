package testinfra

import (
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Etcd is a single-member etcd (Debian package etcd-server) on loopback.
type Etcd struct {
	// Endpoint is the client URL, http://127.0.0.1:port.
	Endpoint string
	Dir      string
	Proc     *Process
	// Etcdctl is the path of etcdctl (Debian package etcd-client).
	Etcdctl string
}

// StartEtcd starts etcd with a fresh data dir on free loopback client and
// peer ports and returns once /health reports healthy.
func StartEtcd(t testing.TB) *Etcd {
	t.Helper()
	bin := Need(t, "etcd-server", "etcd")["etcd"]
	ctl := Need(t, "etcd-client", "etcdctl")["etcdctl"]
	dir := t.TempDir()
	client := "http://127.0.0.1:" + strconv.Itoa(FreePort(t))
	peer := "http://127.0.0.1:" + strconv.Itoa(FreePort(t))
	e := &Etcd{Endpoint: client, Dir: dir, Etcdctl: ctl}
	e.Proc = Start(t, "etcd", []string{
		bin,
		"--data-dir", filepath.Join(dir, "data"),
		"--logger=zap",
		"--listen-client-urls", client,
		"--advertise-client-urls", client,
		"--listen-peer-urls", peer,
		"--initial-advertise-peer-urls", peer,
		"--initial-cluster", "default=" + peer,
	}, WithDir(dir))
	waitReady(t, e.Proc, client+"/health", func(status int, body []byte) bool {
		return status == http.StatusOK && strings.Contains(string(body), `"health":"true"`)
	})
	return e
}
