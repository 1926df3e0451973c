package testinfra

import (
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
)

func TestEtcd(t *testing.T) {
	t.Parallel()
	e := StartEtcd(t)
	out, err := exec.Command(e.Etcdctl, "--endpoints", e.Endpoint, "put", "/services/a", `{"targets":["x:1"]}`).CombinedOutput()
	if err != nil {
		t.Fatalf("etcdctl put: %v\n%s", err, out)
	}
	out, err = exec.Command(e.Etcdctl, "--endpoints", e.Endpoint, "get", "--print-value-only", "/services/a").CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"x:1"`) {
		t.Fatalf("etcdctl get: %v\n%s", err, out)
	}
}

func TestBlackboxExporter(t *testing.T) {
	t.Parallel()
	u := StartBlackboxExporter(t, "modules:\n  tcp_connect:\n    prober: tcp\n    timeout: 2s\n")
	resp, err := http.Get(u + "/probe?module=tcp_connect&target=" + url.QueryEscape(strings.TrimPrefix(u, "http://")))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), "probe_success 1") {
		t.Errorf("probing itself did not succeed:\n%s", body)
	}
}

func TestHAProxy(t *testing.T) {
	t.Parallel()
	h := StartHAProxy(t, "127.0.0.1:1")
	resp, err := http.Get(h.MetricsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), "haproxy_process_") {
		t.Errorf("/metrics has no haproxy_process_ series:\n%.500s", body)
	}
}
