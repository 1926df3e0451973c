package probe_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/discovery"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	yaml2 "go.yaml.in/yaml/v2"

	twdiscovery "github.com/tidewatch/tidewatch/collector/discovery"
	"github.com/tidewatch/tidewatch/collector/probe"
	"github.com/tidewatch/tidewatch/store"
	"github.com/tidewatch/tidewatch/store/embedded"
)

// waitTimeout bounds every poll: discovery (1 s) + a few probe intervals,
// with slack for a loaded CI machine.
const waitTimeout = 30 * time.Second

var quietLogger = slog.New(slog.DiscardHandler)

// harness is one probe manager writing into a real embedded TSDB in a temp dir.
type harness struct {
	t      *testing.T
	db     *embedded.DB
	set    *metrics.Set
	m      *probe.Manager
	cancel context.CancelFunc
	done   chan error
}

func newHarness(t *testing.T, cfgYAML string, shard twdiscovery.Shard) *harness {
	t.Helper()
	db, err := embedded.Open(embedded.Config{Path: t.TempDir(), Retention: model.Duration(24 * time.Hour)}, quietLogger, nil)
	if err != nil {
		t.Fatalf("open embedded store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	set := metrics.NewSet()
	reg := prometheus.NewRegistry()
	twdiscovery.Register()
	sdMetrics, err := discovery.CreateAndRegisterSDMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	m, err := probe.New(probe.Options{
		Logger:     quietLogger,
		Registerer: reg,
		SDMetrics:  sdMetrics,
		Metrics:    set,
		Appendable: store.Instrument(db, store.NewAppendMetrics(set, "probe")),
	})
	if err != nil {
		t.Fatalf("probe.New: %v", err)
	}
	h := &harness{t: t, db: db, set: set, m: m, done: make(chan error, 1)}
	h.apply(cfgYAML, shard)
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- m.Run(ctx) }()
	t.Cleanup(h.stop)
	return h
}

func parseConfigs(t *testing.T, cfgYAML string) probe.Configs {
	t.Helper()
	twdiscovery.Register()
	var file struct {
		ProbeConfigs probe.Configs `yaml:"probe_configs"`
	}
	if err := yaml2.UnmarshalStrict([]byte(cfgYAML), &file); err != nil {
		t.Fatalf("parse probe configs: %v\n%s", err, cfgYAML)
	}
	return file.ProbeConfigs
}

func (h *harness) apply(cfgYAML string, shard twdiscovery.Shard) {
	h.t.Helper()
	if err := h.m.ApplyConfig(parseConfigs(h.t, cfgYAML), shard); err != nil {
		h.t.Fatalf("ApplyConfig: %v", err)
	}
}

func (h *harness) stop() {
	h.cancel()
	select {
	case <-h.done:
	case <-time.After(waitTimeout):
		h.t.Errorf("Run did not return within %s of cancel", waitTimeout)
	}
}

// eventually polls cond every 50 ms until it holds or waitTimeout passes.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, detail := cond()
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("timed out after %s waiting for %s; last state: %s", waitTimeout, what, detail)
		case <-tick.C:
		}
	}
}

type sample struct {
	T int64
	V float64
}

// series returns every stored sample (stale markers included) of the series
// selected by the PromQL selector sel, keyed by labels string.
func series(t *testing.T, q storage.Queryable, sel string) map[string][]sample {
	t.Helper()
	ms, err := parser.NewParser(parser.Options{}).ParseMetricSelector(sel)
	if err != nil {
		t.Fatalf("selector %q: %v", sel, err)
	}
	querier, err := q.Querier(math.MinInt64, math.MaxInt64)
	if err != nil {
		t.Fatalf("querier: %v", err)
	}
	defer querier.Close()
	ss := querier.Select(context.Background(), true, nil, ms...)
	out := map[string][]sample{}
	var it chunkenc.Iterator
	for ss.Next() {
		s := ss.At()
		it = s.Iterator(it)
		var samples []sample
		for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
			if vt == chunkenc.ValFloat {
				ts, v := it.At()
				samples = append(samples, sample{ts, v})
			}
		}
		out[s.Labels().String()] = samples
	}
	if err := ss.Err(); err != nil {
		t.Fatalf("select %s: %v", sel, err)
	}
	return out
}

// last returns the last value of the single series sel selects, and whether
// there is one (a stale marker counts: check with value.IsStaleNaN).
func (h *harness) last(sel string) (float64, bool) {
	h.t.Helper()
	ss := series(h.t, h.db, sel)
	if len(ss) != 1 {
		return 0, false
	}
	for _, s := range ss {
		if len(s) == 0 {
			return 0, false
		}
		return s[len(s)-1].V, true
	}
	return 0, false
}

// waitLast waits until sel has a last value (not a stale marker) and returns it.
func (h *harness) waitLast(sel string) float64 {
	h.t.Helper()
	var v float64
	eventually(h.t, "a sample of "+sel, func() (bool, string) {
		var ok bool
		v, ok = h.last(sel)
		return ok && !value.IsStaleNaN(v), fmt.Sprintf("%d series", len(series(h.t, h.db, sel)))
	})
	return v
}

// active returns the active target of job probing addr.
func (h *harness) active(job, addr string) (probe.ActiveTarget, bool) {
	active, _ := h.m.Targets()
	for _, a := range active {
		if a.Job == job && a.Target == addr {
			return a, true
		}
	}
	return probe.ActiveTarget{}, false
}

// apiProbes serves GET /api/v1/probes?query through gin and decodes it.
func apiProbes(t *testing.T, m *probe.Manager, query string) (int, apiResponse) {
	t.Helper()
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	m.Routes(r)
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/probes?"+query, nil))
	var resp apiResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatalf("decode /api/v1/probes: %v\n%s", err, rec.Body.String())
	}
	return rec.Code, resp
}

type apiResponse struct {
	Status string `json:"status"`
	Error  string `json:"error"`
	Data   struct {
		ActiveTargets  []probe.ActiveTarget  `json:"activeTargets"`
		DroppedTargets []probe.DroppedTarget `json:"droppedTargets"`
	} `json:"data"`
}

// testCert is a CA and a server certificate for 127.0.0.1 and localhost
// signed by it, generated for one test.
type testCert struct {
	caFile   string
	notAfter time.Time
	server   tls.Certificate
}

func newTestCert(t *testing.T) *testCert {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Second)
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tidewatch test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	notAfter := now.Add(90 * 24 * time.Hour)
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: notAfter,
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	return &testCert{caFile: caFile, notAfter: notAfter, server: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func quote(ss ...string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func selector(name, job string, extra ...labels.Label) string {
	parts := []string{fmt.Sprintf("job=%q", job)}
	for _, l := range extra {
		parts = append(parts, fmt.Sprintf("%s=%q", l.Name, l.Value))
	}
	return name + "{" + strings.Join(parts, ",") + "}"
}
