package collector_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	twdiscovery "github.com/tidewatch/tidewatch/collector/discovery"
	"github.com/tidewatch/tidewatch/internal/testinfra"
)

// discoveryConfig scrapes one job every second with the given discovery
// (indented YAML under the job).
func discoveryConfig(job, sd string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: %s\n", job)
	for _, line := range strings.Split(strings.TrimSpace(sd), "\n") {
		b.WriteString("    " + line + "\n")
	}
	return b.String()
}

// waitUp waits until instance addr of job has been scraped successfully.
func waitUp(h *harness, job, addr string) {
	h.t.Helper()
	sel := fmt.Sprintf(`up{job=%q,instance=%q}`, job, addr)
	h.eventually(sel+" = 1", func() (bool, string) {
		for _, ss := range h.raw(sel) {
			if len(ss) > 0 && ss[len(ss)-1].V == 1 {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%v", h.raw(sel))
	})
}

// waitStale waits until every series of sel ends with a stale marker.
func waitStale(h *harness, sel string) {
	h.t.Helper()
	h.eventually("stale markers ending "+sel, func() (bool, string) {
		got := h.raw(sel)
		if len(got) == 0 {
			return false, "no series"
		}
		for _, ss := range got {
			if len(ss) == 0 || !value.IsStaleNaN(ss[len(ss)-1].V) {
				return false, fmt.Sprintf("%d samples, last not stale", len(ss))
			}
		}
		return true, ""
	})
}

// discoveredLabel returns label name of job's active target addr as
// discovered (before relabeling), "" when the target is not active.
func discoveredLabel(h *harness, job, addr, name string) string {
	tg := h.activeTarget(job, addr)
	if tg == nil {
		return ""
	}
	return tg.DiscoveredLabels(labels.NewBuilder(labels.EmptyLabels())).Get(name)
}

func metricsExporter(t *testing.T) *exporter {
	return newExporter(t, staticHandler(textContentType, "# TYPE app_requests_total counter\napp_requests_total 7\n"))
}

// TestEtcdDiscovery registers instances in a real etcd under the prefix:
// each is scraped, a list of groups works, a bad value is ignored, and a
// deleted registration's series go stale.
func TestEtcdDiscovery(t *testing.T) {
	t.Parallel()
	e := testinfra.StartEtcd(t)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.Endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	put := func(key, val string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		if _, err := cli.Put(ctx, key, val); err != nil {
			t.Fatalf("etcd put %s: %v", key, err)
		}
	}
	a, b, c := metricsExporter(t), metricsExporter(t), metricsExporter(t)
	put("/services/api/a", fmt.Sprintf(`{"targets": [%q], "labels": {"service": "api"}}`, a.addr()))
	put("/other/x", fmt.Sprintf(`{"targets": [%q]}`, c.addr())) // outside the prefix

	h := newHarness(t, discoveryConfig("etcd", fmt.Sprintf(`
etcd_sd_configs:
  - endpoints: [%q]
    prefix: /services/
`, e.Endpoint)), harnessOpts{})
	waitUp(h, "etcd", a.addr())
	if got := discoveredLabel(h, "etcd", a.addr(), "__meta_etcd_key"); got != "/services/api/a" {
		t.Errorf("__meta_etcd_key = %q", got)
	}
	wantValue(t, h, fmt.Sprintf(`app_requests_total{job="etcd",instance=%q,service="api"}`, a.addr()), 7)

	// Registered after start: a list of two groups, and a value that is not JSON.
	put("/services/batch", fmt.Sprintf(`[{"targets": [%q], "labels": {"service": "b"}}, {"targets": [%q], "labels": {"service": "c"}}]`, b.addr(), c.addr()))
	put("/services/broken", `{"targets": "not a list"`)
	waitUp(h, "etcd", b.addr())
	waitUp(h, "etcd", c.addr())
	wantValue(t, h, fmt.Sprintf(`up{job="etcd",instance=%q,service="c"}`, c.addr()), 1)

	// Deregistering: a's series go stale, b and c keep being scraped.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := cli.Delete(ctx, "/services/api/a"); err != nil {
		t.Fatal(err)
	}
	waitStale(h, fmt.Sprintf(`up{job="etcd",instance=%q}`, a.addr()))
	waitStale(h, fmt.Sprintf(`app_requests_total{job="etcd",instance=%q}`, a.addr()))
	// Shrinking a list removes only the group that went.
	put("/services/batch", fmt.Sprintf(`[{"targets": [%q], "labels": {"service": "b"}}]`, b.addr()))
	waitStale(h, fmt.Sprintf(`up{job="etcd",instance=%q}`, c.addr()))
	if h.activeTarget("etcd", b.addr()) == nil {
		t.Errorf("target %s is gone after its list shrank", b.addr())
	}
}

// TestZooKeeperDiscovery registers a serverset member and a nerve instance
// in a real ZooKeeper: each is scraped, and deleting a node makes its
// series stale.
func TestZooKeeperDiscovery(t *testing.T) {
	t.Parallel()
	addr := testinfra.StartZooKeeper(t)
	conn, events, err := zk.Connect([]string{addr}, 10*time.Second, zk.WithLogger(zkQuiet{}))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// ruok answers before the server takes sessions: wait for ours.
	for ev := range events {
		if ev.State == zk.StateHasSession {
			break
		}
	}
	for _, p := range []string{"/tidewatch", "/tidewatch/serverset", "/tidewatch/nerve"} {
		if _, err := conn.Create(p, nil, 0, zk.WorldACL(zk.PermAll)); err != nil && err != zk.ErrNodeExists {
			t.Fatalf("create %s: %v", p, err)
		}
	}
	ss, nerve := metricsExporter(t), metricsExporter(t)
	h := newHarness(t, fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: serverset
    serverset_sd_configs: [{servers: [%q], paths: [/tidewatch/serverset], timeout: 10s}]
  - job_name: nerve
    nerve_sd_configs: [{servers: [%q], paths: [/tidewatch/nerve], timeout: 10s}]
`, addr, addr), harnessOpts{})

	host, port := splitHostPort(t, ss.addr())
	member, _ := json.Marshal(map[string]any{
		"serviceEndpoint": map[string]any{"host": host, "port": port}, "additionalEndpoints": map[string]any{},
		"status": "ALIVE", "shard": 0,
	})
	memberPath, err := conn.Create("/tidewatch/serverset/member_", member, zk.FlagSequence, zk.WorldACL(zk.PermAll))
	if err != nil {
		t.Fatal(err)
	}
	host, port = splitHostPort(t, nerve.addr())
	inst, _ := json.Marshal(map[string]any{"host": host, "port": port, "name": "api"})
	if _, err := conn.Create("/tidewatch/nerve/api_1", inst, 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	waitUp(h, "serverset", ss.addr())
	waitUp(h, "nerve", nerve.addr())
	if got := discoveredLabel(h, "serverset", ss.addr(), "__meta_serverset_status"); got != "ALIVE" {
		t.Errorf("__meta_serverset_status = %q", got)
	}
	if err := conn.Delete(memberPath, -1); err != nil {
		t.Fatal(err)
	}
	waitStale(h, fmt.Sprintf(`up{job="serverset",instance=%q}`, ss.addr()))
	if err := conn.Delete("/tidewatch/nerve/api_1", -1); err != nil {
		t.Fatal(err)
	}
	waitStale(h, fmt.Sprintf(`up{job="nerve",instance=%q}`, nerve.addr()))
}

type zkQuiet struct{}

func (zkQuiet) Printf(string, ...any) {}

func splitHostPort(t *testing.T, addr string) (string, int) {
	t.Helper()
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(p)
	return host, port
}

// TestRegistryAPIs drives Prometheus' real Consul, Nomad and Kubernetes
// discovery code against httptest servers speaking those APIs (no Consul,
// Nomad or Kubernetes server is available here): an instance registered in
// the fake is scraped, and deregistering it makes its series stale.
func TestRegistryAPIs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// start returns the fake's URL and functions to register and
		// deregister the instance at addr.
		start func(t *testing.T) (url string, reg func(addr string), dereg func())
		sd    string // the discovery config, %s is the fake's URL
		meta  [2]string
	}{
		{
			name:  "consul",
			start: startFakeConsul,
			sd:    "consul_sd_configs: [{server: %q, datacenter: dc1, services: [api], refresh_interval: 1s}]",
			meta:  [2]string{"__meta_consul_service", "api"},
		},
		{
			name:  "nomad",
			start: startFakeNomad,
			sd:    "nomad_sd_configs: [{server: %q, refresh_interval: 1s}]",
			meta:  [2]string{"__meta_nomad_service", "api"},
		},
		{
			name:  "kubernetes",
			start: startFakeKubernetes,
			sd:    "kubernetes_sd_configs: [{role: pod, api_server: %q}]",
			meta:  [2]string{"__meta_kubernetes_pod_name", "api-0"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			url, reg, dereg := tc.start(t)
			exp := metricsExporter(t)
			h := newHarness(t, discoveryConfig(tc.name, fmt.Sprintf(tc.sd, url)), harnessOpts{})
			reg(exp.addr())
			waitUp(h, tc.name, exp.addr())
			if got := discoveredLabel(h, tc.name, exp.addr(), tc.meta[0]); got != tc.meta[1] {
				t.Errorf("%s = %q, want %q", tc.meta[0], got, tc.meta[1])
			}
			dereg()
			waitStale(h, fmt.Sprintf(`up{job=%q,instance=%q}`, tc.name, exp.addr()))
		})
	}
}

// blockingIndex is the X-Consul-Index / X-Nomad-Index of a fake registry,
// with Consul's blocking queries: a request with ?index=N waits until the
// index moves past N (or ?wait passes).
type blockingIndex struct {
	mtx     sync.Mutex
	index   uint64
	changed chan struct{}
}

func newBlockingIndex() *blockingIndex {
	return &blockingIndex{index: 1, changed: make(chan struct{})}
}

func (b *blockingIndex) bump(f func()) {
	b.mtx.Lock()
	defer b.mtx.Unlock()
	f()
	b.index++
	close(b.changed)
	b.changed = make(chan struct{})
}

// wait blocks while the request's index is current, then returns the index.
func (b *blockingIndex) wait(r *http.Request) uint64 {
	want, _ := strconv.ParseUint(r.URL.Query().Get("index"), 10, 64)
	wait, err := time.ParseDuration(r.URL.Query().Get("wait"))
	if err != nil || wait <= 0 {
		wait = 5 * time.Second
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		b.mtx.Lock()
		idx, ch := b.index, b.changed
		b.mtx.Unlock()
		if want == 0 || idx != want {
			return idx
		}
		select {
		case <-ch:
		case <-timer.C:
			return idx
		case <-r.Context().Done():
			return idx
		}
	}
}

func startFakeConsul(t *testing.T) (string, func(string), func()) {
	idx := newBlockingIndex()
	var nodes []map[string]any
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/health/service/api", func(w http.ResponseWriter, r *http.Request) {
		i := idx.wait(r)
		idx.mtx.Lock()
		body, _ := json.Marshal(nodes)
		idx.mtx.Unlock()
		w.Header().Set("X-Consul-Index", strconv.FormatUint(i, 10))
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	reg := func(addr string) {
		host, port := splitHostPort(t, addr)
		idx.bump(func() {
			nodes = []map[string]any{{
				"Node":    map[string]any{"Node": "node-1", "Address": host, "Datacenter": "dc1"},
				"Service": map[string]any{"ID": "api-1", "Service": "api", "Address": host, "Port": port, "Tags": []string{"v1"}},
				"Checks":  []map[string]any{{"Status": "passing"}},
			}}
		})
	}
	return srv.URL, reg, func() { idx.bump(func() { nodes = nil }) }
}

func startFakeNomad(t *testing.T) (string, func(string), func()) {
	var mtx sync.Mutex
	var regs []map[string]any
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/services", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Nomad-Index", "1")
		json.NewEncoder(w).Encode([]map[string]any{{"Namespace": "default", "Services": []map[string]any{{"ServiceName": "api", "Tags": []string{"v1"}}}}})
	})
	mux.HandleFunc("/v1/service/api", func(w http.ResponseWriter, r *http.Request) {
		mtx.Lock()
		defer mtx.Unlock()
		w.Header().Set("X-Nomad-Index", "1")
		body := regs
		if body == nil {
			body = []map[string]any{}
		}
		json.NewEncoder(w).Encode(body)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	reg := func(addr string) {
		host, port := splitHostPort(t, addr)
		mtx.Lock()
		defer mtx.Unlock()
		regs = []map[string]any{{
			"ID": "_nomad-task-1-api", "ServiceName": "api", "Namespace": "default", "NodeID": "node-1",
			"Datacenter": "dc1", "JobID": "api", "AllocID": "alloc-1", "Tags": []string{"v1"}, "Address": host, "Port": port,
		}}
	}
	return srv.URL, reg, func() {
		mtx.Lock()
		defer mtx.Unlock()
		regs = nil
	}
}

// fakeKubernetes serves pods: LIST, WATCH (with streaming initial events,
// as client-go's WatchListClient asks) and events as pods come and go.
type fakeKubernetes struct {
	mtx      sync.Mutex
	rv       int
	pod      map[string]any // nil: no pod
	watchers []chan string  // JSON watch events
}

func startFakeKubernetes(t *testing.T) (string, func(string), func()) {
	k := &fakeKubernetes{rv: 1}
	srv := httptest.NewServer(http.HandlerFunc(k.serve))
	t.Cleanup(srv.Close)
	reg := func(addr string) {
		host, port := splitHostPort(t, addr)
		k.event("ADDED", func() map[string]any {
			k.pod = map[string]any{
				"apiVersion": "v1", "kind": "Pod",
				"metadata": map[string]any{"name": "api-0", "namespace": "default", "uid": "uid-api-0", "labels": map[string]string{"app": "api"}},
				"spec": map[string]any{"nodeName": "node-1", "containers": []map[string]any{{
					"name": "app", "image": "api:1", "ports": []map[string]any{{"name": "metrics", "containerPort": port, "protocol": "TCP"}},
				}}},
				"status": map[string]any{"phase": "Running", "podIP": host, "hostIP": host,
					"conditions": []map[string]any{{"type": "Ready", "status": "True"}}},
			}
			return k.pod
		})
	}
	dereg := func() {
		k.event("DELETED", func() map[string]any {
			p := k.pod
			k.pod = nil
			return p
		})
	}
	return srv.URL, reg, dereg
}

// event changes the state with f (which returns the object concerned),
// bumps the resource version and sends the event to every watcher.
func (k *fakeKubernetes) event(typ string, f func() map[string]any) {
	k.mtx.Lock()
	defer k.mtx.Unlock()
	obj := f()
	k.rv++
	obj["metadata"].(map[string]any)["resourceVersion"] = strconv.Itoa(k.rv)
	ev, _ := json.Marshal(map[string]any{"type": typ, "object": obj})
	for _, w := range k.watchers {
		select {
		case w <- string(ev):
		default:
		}
	}
}

func (k *fakeKubernetes) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/pods" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	q := r.URL.Query()
	k.mtx.Lock()
	rv := strconv.Itoa(k.rv)
	var items []map[string]any
	if k.pod != nil {
		items = append(items, k.pod)
	}
	if q.Get("watch") != "true" {
		k.mtx.Unlock()
		json.NewEncoder(w).Encode(map[string]any{
			"apiVersion": "v1", "kind": "PodList", "metadata": map[string]any{"resourceVersion": rv}, "items": items,
		})
		return
	}
	ch := make(chan string, 16)
	k.watchers = append(k.watchers, ch)
	k.mtx.Unlock()
	flusher := w.(http.Flusher)
	if q.Get("sendInitialEvents") == "true" {
		enc := json.NewEncoder(w)
		for _, it := range items {
			enc.Encode(map[string]any{"type": "ADDED", "object": it})
		}
		enc.Encode(map[string]any{"type": "BOOKMARK", "object": map[string]any{
			"apiVersion": "v1", "kind": "Pod",
			"metadata": map[string]any{"resourceVersion": rv, "annotations": map[string]string{"k8s.io/initial-events-end": "true"}},
		}})
	}
	flusher.Flush()
	for {
		select {
		case <-r.Context().Done():
			return
		case ev := <-ch:
			fmt.Fprintln(w, ev)
			flusher.Flush()
		}
	}
}

// TestShardedScrapes: two collectors with shard count 2 scrape every
// target exactly once between them.
func TestShardedScrapes(t *testing.T) {
	t.Parallel()
	const n = 16
	type hit struct{ target, shard string }
	var mtx sync.Mutex
	hits := map[hit]bool{}
	var targets []string
	for i := range n {
		e := newExporter(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mtx.Lock()
			hits[hit{strconv.Itoa(i), r.URL.Query().Get("shard")}] = true
			mtx.Unlock()
			w.Header().Set("Content-Type", textContentType)
			fmt.Fprintln(w, "x 1")
		}))
		targets = append(targets, e.addr())
	}
	var hs []*harness
	for shard := range 2 {
		cfg := config(jobConfig("fleet", targets, fmt.Sprintf("params: {shard: [%d]}", shard)))
		hs = append(hs, newShardedHarness(t, cfg, shard, 2))
	}
	for _, h := range hs {
		h.eventually("every target active or dropped", func() (bool, string) {
			active := len(h.col.Targets().TargetsActive()["fleet"])
			dropped := len(h.col.Targets().TargetsDropped()["fleet"])
			return active+dropped == n, fmt.Sprintf("%d active, %d dropped", active, dropped)
		})
	}
	owner := map[string]int{}
	for i, h := range hs {
		for _, tg := range h.col.Targets().TargetsActive()["fleet"] {
			addr := tg.URL().Host
			if prev, ok := owner[addr]; ok {
				t.Errorf("%s is scraped by shards %d and %d", addr, prev, i)
			}
			owner[addr] = i
		}
	}
	if len(owner) != n {
		t.Errorf("%d of %d targets have a shard", len(owner), n)
	}
	for i, h := range hs {
		if a := len(h.col.Targets().TargetsActive()["fleet"]); a == 0 || a == n {
			t.Errorf("shard %d scrapes %d of %d targets", i, a, n)
		}
		h.waitScrapes("fleet", float64(len(h.col.Targets().TargetsActive()["fleet"])))
	}
	mtx.Lock()
	defer mtx.Unlock()
	for h := range hits {
		i, _ := strconv.Atoi(h.target)
		if want := strconv.Itoa(owner[targets[i]]); h.shard != want {
			t.Errorf("target %d was scraped by shard %s, it belongs to shard %s", i, h.shard, want)
		}
	}
}

// TestRealExporters scrapes a real HAProxy (its built-in Prometheus
// exporter) and a real node_exporter.
func TestRealExporters(t *testing.T) {
	t.Parallel()
	backend := metricsExporter(t)
	hp := testinfra.StartHAProxy(t, backend.addr())
	node := testinfra.StartNodeExporter(t)
	hpAddr := strings.TrimSuffix(strings.TrimPrefix(hp.MetricsURL, "http://"), "/metrics")
	nodeAddr := strings.TrimPrefix(node, "http://")
	h := newHarness(t, config(jobConfig("haproxy", []string{hpAddr}, ""), jobConfig("node", []string{nodeAddr}, "")), harnessOpts{})
	waitUp(h, "haproxy", hpAddr)
	waitUp(h, "node", nodeAddr)
	for _, q := range []string{
		`haproxy_process_nbthread{job="haproxy"}`,
		`haproxy_backend_status{job="haproxy",proxy="app"}`,
		`node_cpu_seconds_total{job="node",mode="idle"}`,
		`node_memory_MemTotal_bytes{job="node"}`,
	} {
		h.eventually(q, func() (bool, string) {
			res := h.instant(q)
			return len(res) > 0, fmt.Sprintf("%v", res)
		})
	}
}

// newShardedHarness is newHarness for shard index of count.
func newShardedHarness(t *testing.T, cfg string, index, count int) *harness {
	t.Helper()
	h := newHarness(t, "scrape_configs: []\n", harnessOpts{})
	if err := h.col.ApplyShardedConfig(loadConfig(t, cfg), twdiscovery.Shard{Count: count, Index: index}); err != nil {
		t.Fatalf("ApplyShardedConfig: %v", err)
	}
	return h
}
