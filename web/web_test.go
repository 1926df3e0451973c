package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/scrape"
	"github.com/prometheus/prometheus/storage"

	"github.com/tidewatch/tidewatch/collector/receive"
	"github.com/tidewatch/tidewatch/internal/version"
	"github.com/tidewatch/tidewatch/store"
	"github.com/tidewatch/tidewatch/store/embedded"
	"github.com/tidewatch/tidewatch/web"
)

// t0 is the time (ms) the fixtures are written at; queries evaluate there.
const t0 int64 = 1_700_000_000_000

var t0s = fmt.Sprint(t0 / 1000)

type env struct {
	url      string
	db       *embedded.DB
	set      *metrics.Set
	notReady atomic.Pointer[error]
	reloads  atomic.Int64
	reload   func() error
	token    string
}

type envOpts struct {
	query     store.QueryConfig
	token     string
	noReload  bool
	reloadErr error
}

// newEnv wires a server as cmd/tidewatch does: embedded store, engine and
// store registering in one registry, remote write through store.Instrument.
func newEnv(t *testing.T, o envOpts) *env {
	t.Helper()
	if o.query == (store.QueryConfig{}) {
		o.query = store.DefaultQueryConfig
	}
	logger := slog.New(slog.DiscardHandler)
	reg := prometheus.NewRegistry()
	ecfg := embedded.DefaultConfig
	ecfg.Path = t.TempDir()
	db, err := embedded.Open(ecfg, logger, reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	e := &env{db: db, set: metrics.NewSet(), token: o.token}

	sm, err := scrape.NewManager(&scrape.Options{}, logger, nil, nil, db, reg)
	if err != nil {
		t.Fatalf("scrape manager: %v", err)
	}
	var cfg web.Config
	cfg.ListenAddress = "127.0.0.1:0"
	if o.token != "" {
		cfg.BearerTokenFile = filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(cfg.BearerTokenFile, []byte(o.token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	opts := web.Options{
		Logger:        logger,
		Config:        cfg,
		Metrics:       e.set,
		Gatherer:      reg,
		Registerer:    reg,
		Engine:        store.NewEngine(o.query, logger, reg),
		Queryable:     db,
		Exemplars:     db,
		TSDB:          db,
		Targets:       sm,
		LookbackDelta: time.Duration(o.query.LookbackDelta),
		QueryTimeout:  time.Duration(o.query.Timeout),
		Ready: func() error {
			if p := e.notReady.Load(); p != nil {
				return *p
			}
			return nil
		},
	}
	rw, err := receive.NewRemoteWrite(receive.Options{
		Logger: logger, Registerer: reg, Metrics: e.set,
		Appendable: store.Instrument(db, store.NewAppendMetrics(e.set, "remote_write")),
		Ready:      opts.Ready,
	})
	if err != nil {
		t.Fatal(err)
	}
	opts.Routes = append(opts.Routes, rw.Routes)
	if !o.noReload {
		opts.Reload = func() error {
			e.reloads.Add(1)
			return o.reloadErr
		}
	}
	s, err := web.New(opts)
	if err != nil {
		t.Fatalf("web.New: %v", err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	e.url = srv.URL
	return e
}

func (e *env) setReady(err error) {
	if err == nil {
		e.notReady.Store(nil)
		return
	}
	e.notReady.Store(&err)
}

// write commits float samples at t0+i*15s for each series, creating the
// series in sorted order: /api/v1/series with one matcher set returns series
// unsorted (in creation order on the embedded store), as Prometheus does.
func (e *env) write(t *testing.T, series map[string][]float64) {
	t.Helper()
	app := e.db.AppenderV2(context.Background())
	for _, s := range slices.Sorted(maps.Keys(series)) {
		vs := series[s]
		ls, err := parser.NewParser(parser.Options{}).ParseMetric(s)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range vs {
			if _, err := app.Append(0, ls, 0, t0+int64(i)*15_000, v, nil, nil, storage.AppendV2Options{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
}

func (e *env) do(t *testing.T, method, path string, body io.Reader, hdr map[string]string) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if e.token != "" {
		req.Header.Set("Authorization", "Bearer "+e.token)
	}
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b, resp.Header
}

func (e *env) get(t *testing.T, path string) (int, []byte) {
	t.Helper()
	code, b, _ := e.do(t, http.MethodGet, path, nil, nil)
	return code, b
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("response is not JSON: %v\n%s", err, b)
	}
	return m
}

// jsonEqual compares a response body with the expected JSON document.
func jsonEqual(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("response is not JSON: %v\n%s", err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad expectation %s: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("body\n got  %s\n want %s", got, want)
	}
}

func TestHealthAndReady(t *testing.T) {
	e := newEnv(t, envOpts{})
	if code, body := e.get(t, "/-/healthy"); code != http.StatusOK {
		t.Errorf("/-/healthy = %d %s", code, body)
	}
	e.setReady(errors.New("store queue is full"))
	code, body := e.get(t, "/-/ready")
	if code != http.StatusServiceUnavailable || !strings.Contains(string(body), "store queue is full") {
		t.Errorf("/-/ready while not ready = %d %q, want 503 with the reason", code, body)
	}
	if code, _ := e.get(t, "/-/healthy"); code != http.StatusOK {
		t.Errorf("/-/healthy while not ready = %d, want 200", code)
	}
	e.setReady(nil)
	if code, body := e.get(t, "/-/ready"); code != http.StatusOK {
		t.Errorf("/-/ready = %d %s, want 200", code, body)
	}
}

func TestQuery(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.write(t, map[string][]float64{`up{job="a"}`: {1}, `up{job="b"}`: {0}})
	code, body := e.get(t, "/api/v1/query?query="+url.QueryEscape(`up{job="a"}`)+"&time="+t0s)
	if code != http.StatusOK {
		t.Fatalf("query = %d %s", code, body)
	}
	jsonEqual(t, body, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"a"},"value":[`+t0s+`,"1"]}]}}`)

	code, body = e.get(t, "/api/v1/query?query="+url.QueryEscape(`sum(up)`)+"&time="+t0s)
	if code != http.StatusOK {
		t.Fatalf("query = %d %s", code, body)
	}
	jsonEqual(t, body, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[`+t0s+`,"1"]}]}}`)

	code, body = e.get(t, "/api/v1/query?query=42&time="+t0s)
	if code != http.StatusOK {
		t.Fatalf("query = %d %s", code, body)
	}
	jsonEqual(t, body, `{"status":"success","data":{"resultType":"scalar","result":[`+t0s+`,"42"]}}`)
}

// parseErr is the message Prometheus' parser gives for q.
func parseErr(t *testing.T, q string) string {
	_, err := parser.NewParser(parser.Options{}).ParseExpr(q)
	if err == nil {
		t.Fatalf("%q parses", q)
	}
	return err.Error()
}

func TestQueryErrors(t *testing.T) {
	cases := []struct {
		name      string
		query     store.QueryConfig
		path      string
		code      int
		errorType string
		// error is the exact message, or a prefix when prefix is set.
		error  string
		prefix bool
	}{
		{
			name: "parse error", path: "/api/v1/query?query=" + url.QueryEscape("sum(up"),
			code: 400, errorType: "bad_data", error: `invalid parameter "query": ` + parseErr(t, "sum(up"),
		},
		{
			name: "missing query", path: "/api/v1/query",
			code: 400, errorType: "bad_data", error: `invalid parameter "query": ` + parseErr(t, ""),
		},
		{
			name: "bad time", path: "/api/v1/query?query=up&time=yesterday",
			code: 400, errorType: "bad_data", error: `invalid parameter "time": invalid time value for 'time': cannot parse "yesterday" to a valid timestamp`,
		},
		{
			name: "range: missing step", path: "/api/v1/query_range?query=up&start=" + t0s + "&end=" + t0s,
			code: 400, errorType: "bad_data", error: `invalid parameter "step": cannot parse "" to a valid duration`,
		},
		{
			name:  "too many samples",
			query: store.QueryConfig{Timeout: model.Duration(time.Minute), MaxSamples: 1, LookbackDelta: model.Duration(5 * time.Minute)},
			path:  "/api/v1/query?query=up&time=" + t0s,
			code:  422, errorType: "execution", error: "query processing would load too many samples into memory in ", prefix: true,
		},
		{
			name:  "timeout",
			query: store.QueryConfig{Timeout: model.Duration(time.Nanosecond), MaxSamples: 1000, LookbackDelta: model.Duration(5 * time.Minute)},
			path:  "/api/v1/query?query=up&time=" + t0s,
			code:  503, errorType: "timeout", error: "query timed out in ", prefix: true,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, envOpts{query: c.query})
			e.write(t, map[string][]float64{`up{job="a"}`: {1}, `up{job="b"}`: {0}})
			code, body, hdr := e.do(t, http.MethodGet, c.path, nil, nil)
			if code != c.code {
				t.Errorf("status = %d, want %d; body %s", code, c.code, body)
			}
			if ct := hdr.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			m := decode(t, body)
			if len(m) != 3 || m["status"] != "error" || m["errorType"] != c.errorType {
				t.Errorf("body = %s, want exactly status=error, errorType=%s, error", body, c.errorType)
			}
			msg, _ := m["error"].(string)
			if c.prefix && !strings.HasPrefix(msg, c.error) || !c.prefix && msg != c.error {
				t.Errorf("error = %q, want %q (prefix: %v)", msg, c.error, c.prefix)
			}
		})
	}
}

func TestQueryRange(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.write(t, map[string][]float64{`reqs_total{job="a"}`: {0, 15, 30, 45, 60, 75, 90, 105, 120}})
	params := url.Values{
		"query": {`reqs_total`},
		"start": {fmt.Sprint(t0/1000 + 60)},
		"end":   {fmt.Sprint(t0/1000 + 120)},
		"step":  {"30s"},
	}
	start := t0/1000 + 60
	want := fmt.Sprintf(`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"reqs_total","job":"a"},"values":[[%d,"60"],[%d,"90"],[%d,"120"]]}]}}`, start, start+30, start+60)
	cases := []struct {
		name string
		do   func() (int, []byte, http.Header)
	}{
		{"GET", func() (int, []byte, http.Header) {
			return e.do(t, http.MethodGet, "/api/v1/query_range?"+params.Encode(), nil, nil)
		}},
		{"POST form", func() (int, []byte, http.Header) {
			return e.do(t, http.MethodPost, "/api/v1/query_range", strings.NewReader(params.Encode()), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body, _ := c.do()
			if code != http.StatusOK {
				t.Fatalf("status %d: %s", code, body)
			}
			jsonEqual(t, body, want)
		})
	}
}

func TestSeriesAndLabels(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.write(t, map[string][]float64{
		`up{job="api",instance="a"}`:                {1},
		`up{job="web",instance="b"}`:                {1},
		`http_requests_total{job="api",code="200"}`: {5},
	})
	rng := "&start=" + fmt.Sprint(t0/1000-60) + "&end=" + fmt.Sprint(t0/1000+60)
	cases := []struct {
		name, path, want string
	}{
		{"series", "/api/v1/series?match[]=" + url.QueryEscape(`up`) + rng,
			`{"status":"success","data":[{"__name__":"up","instance":"a","job":"api"},{"__name__":"up","instance":"b","job":"web"}]}`},
		{"series two matchers", "/api/v1/series?match[]=" + url.QueryEscape(`up{job="web"}`) + "&match[]=" + url.QueryEscape(`http_requests_total`) + rng,
			`{"status":"success","data":[{"__name__":"http_requests_total","code":"200","job":"api"},{"__name__":"up","instance":"b","job":"web"}]}`},
		{"labels", "/api/v1/labels?" + rng[1:],
			`{"status":"success","data":["__name__","code","instance","job"]}`},
		{"labels with match", "/api/v1/labels?match[]=" + url.QueryEscape(`up`) + rng,
			`{"status":"success","data":["__name__","instance","job"]}`},
		{"label values", "/api/v1/label/job/values?" + rng[1:],
			`{"status":"success","data":["api","web"]}`},
		{"label values with match", "/api/v1/label/job/values?match[]=" + url.QueryEscape(`http_requests_total`) + rng,
			`{"status":"success","data":["api"]}`},
		{"metric names", "/api/v1/label/__name__/values",
			`{"status":"success","data":["http_requests_total","up"]}`},
		{"label values none", "/api/v1/label/nope/values",
			`{"status":"success","data":[]}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := e.get(t, c.path)
			if code != http.StatusOK {
				t.Fatalf("status %d: %s", code, body)
			}
			jsonEqual(t, body, c.want)
		})
	}
	t.Run("series without match", func(t *testing.T) {
		code, body := e.get(t, "/api/v1/series")
		if code != http.StatusBadRequest || decode(t, body)["errorType"] != "bad_data" {
			t.Errorf("status %d: %s, want 400 bad_data", code, body)
		}
	})
}

func TestBuildInfo(t *testing.T) {
	e := newEnv(t, envOpts{})
	code, body := e.get(t, "/api/v1/status/buildinfo")
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	m := decode(t, body)
	data, _ := m["data"].(map[string]any)
	if m["status"] != "success" || data == nil {
		t.Fatalf("body %s", body)
	}
	for _, k := range []string{"version", "revision", "branch", "buildUser", "buildDate", "goVersion"} {
		if _, ok := data[k].(string); !ok {
			t.Errorf("buildinfo lacks %q: %s", k, body)
		}
	}
	if data["version"] != version.Version || data["goVersion"] != runtime.Version() {
		t.Errorf("buildinfo = %s, want version %s, goVersion %s", body, version.Version, runtime.Version())
	}
}

func remoteWriteBody(t *testing.T, ts int64) []byte {
	t.Helper()
	req := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		{
			Labels:  []prompb.Label{{Name: "__name__", Value: "rw_metric"}, {Name: "instance", Value: "x"}},
			Samples: []prompb.Sample{{Value: 1, Timestamp: ts}, {Value: 2, Timestamp: ts + 15_000}},
		},
		{
			Labels:  []prompb.Label{{Name: "__name__", Value: "rw_metric"}, {Name: "instance", Value: "y"}},
			Samples: []prompb.Sample{{Value: 7, Timestamp: ts}},
		},
	}}
	b, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return snappy.Encode(nil, b)
}

var rwHeaders = map[string]string{
	"Content-Type":                      "application/x-protobuf",
	"Content-Encoding":                  "snappy",
	"X-Prometheus-Remote-Write-Version": "0.1.0",
}

// stored returns the number of rw_metric samples in the store.
func stored(t *testing.T, db *embedded.DB) map[string][]float64 {
	t.Helper()
	q, err := db.Querier(math.MinInt64, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	out := map[string][]float64{}
	set := q.Select(context.Background(), true, nil, labels.MustNewMatcher(labels.MatchEqual, "__name__", "rw_metric"))
	for set.Next() {
		it := set.At().Iterator(nil)
		inst := set.At().Labels().Get("instance")
		for it.Next() != 0 {
			_, v := it.At()
			out[inst] = append(out[inst], v)
		}
	}
	if err := set.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRemoteWrite(t *testing.T) {
	ts := time.Now().Add(-time.Minute).UnixMilli()
	cases := []struct {
		name     string
		body     []byte
		notReady bool
		code     int
		want     map[string][]float64
	}{
		{"remote write 1.0", remoteWriteBody(t, ts), false, http.StatusNoContent, map[string][]float64{"x": {1, 2}, "y": {7}}},
		{"not snappy", []byte("definitely not snappy"), false, http.StatusBadRequest, map[string][]float64{}},
		{"not protobuf", snappy.Encode(nil, []byte("\xff\xff\xff garbage")), false, http.StatusBadRequest, map[string][]float64{}},
		{"not ready", remoteWriteBody(t, ts), true, http.StatusServiceUnavailable, map[string][]float64{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, envOpts{})
			if c.notReady {
				e.setReady(errors.New("disk queue full"))
			}
			code, body, _ := e.do(t, http.MethodPost, "/api/v1/write", bytes.NewReader(c.body), rwHeaders)
			if code != c.code {
				t.Fatalf("status %d (%s), want %d", code, body, c.code)
			}
			if got := stored(t, e.db); !reflect.DeepEqual(got, c.want) {
				t.Errorf("stored %v, want %v", got, c.want)
			}
			if c.code != http.StatusNoContent {
				return
			}
			// Queryable through the API too.
			code, body = e.get(t, "/api/v1/query?query=rw_metric&time="+fmt.Sprintf("%.3f", float64(ts+15_000)/1000))
			if code != http.StatusOK {
				t.Fatalf("query %d %s", code, body)
			}
			jsonEqual(t, body, fmt.Sprintf(`{"status":"success","data":{"resultType":"vector","result":[`+
				`{"metric":{"__name__":"rw_metric","instance":"x"},"value":[%[1]s,"2"]},`+
				`{"metric":{"__name__":"rw_metric","instance":"y"},"value":[%[1]s,"7"]}]}}`, fmt.Sprintf("%.3f", float64(ts+15_000)/1000)))
			if v, _ := metricValue(t, e.set, `tidewatch_store_samples_appended_total{source="remote_write"}`); v != 3 {
				t.Errorf("remote_write samples appended = %v, want 3", v)
			}
		})
	}
}

func TestBearerAuth(t *testing.T) {
	e := newEnv(t, envOpts{token: "s3cret"})
	reqs := []struct{ method, path string }{
		{http.MethodGet, "/api/v1/query?query=1"},
		{http.MethodPost, "/api/v1/query?query=1"},
		{http.MethodGet, "/api/v1/labels"},
		{http.MethodGet, "/metrics"},
		{http.MethodPost, "/-/reload"},
		{http.MethodPost, "/api/v1/write"},
	}
	auths := []struct {
		name, header string
		want         int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"wrong token", "Bearer nope", http.StatusUnauthorized},
		{"token as basic", "Basic czNjcmV0", http.StatusUnauthorized},
		{"token prefix", "Bearer s3cre", http.StatusUnauthorized},
		{"right token", "Bearer s3cret", http.StatusOK},
	}
	for _, r := range reqs {
		for _, a := range auths {
			t.Run(r.method+" "+r.path+" "+a.name, func(t *testing.T) {
				want := a.want
				var body io.Reader
				if r.path == "/api/v1/write" {
					body = bytes.NewReader(remoteWriteBody(t, time.Now().UnixMilli()))
					if want == http.StatusOK {
						want = http.StatusNoContent
					}
				}
				hdr := map[string]string{"Authorization": a.header}
				for k, v := range rwHeaders {
					hdr[k] = v
				}
				code, b, h := e.do(t, r.method, r.path, body, hdr)
				if code != want {
					t.Errorf("status %d (%s), want %d", code, b, want)
				}
				if want == http.StatusUnauthorized && !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("401 without a Bearer WWW-Authenticate challenge: %v", h)
				}
			})
		}
	}
	t.Run("health endpoints are open", func(t *testing.T) {
		for _, p := range []string{"/-/healthy", "/-/ready"} {
			if code, _, _ := e.do(t, http.MethodGet, p, nil, map[string]string{"Authorization": ""}); code != http.StatusOK {
				t.Errorf("%s without token = %d, want 200", p, code)
			}
		}
	})
}

func metricValue(t *testing.T, set *metrics.Set, series string) (float64, bool) {
	t.Helper()
	var buf bytes.Buffer
	set.WritePrometheus(&buf)
	for line := range strings.Lines(buf.String()) {
		name, val, ok := strings.Cut(strings.TrimSpace(line), " ")
		if ok && name == series {
			var f float64
			if _, err := fmt.Sscan(val, &f); err != nil {
				t.Fatal(err)
			}
			return f, true
		}
	}
	return 0, false
}

func TestMetrics(t *testing.T) {
	e := newEnv(t, envOpts{})
	if code, body := e.get(t, "/api/v1/query?query=1"); code != http.StatusOK {
		t.Fatalf("query %d %s", code, body)
	}
	code, body, hdr := e.do(t, http.MethodGet, "/metrics", nil, nil)
	if code != http.StatusOK {
		t.Fatalf("/metrics = %d", code)
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q", ct)
	}
	for _, want := range []string{
		`tidewatch_http_requests_total{handler="/api/v1/query",code="200"} 1`,
		`tidewatch_query_duration_seconds_count{kind="instant"} 1`,
	} {
		if !strings.Contains(string(body), want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v\n%s", err, body)
	}
	for _, name := range []string{"tidewatch_http_requests_total", "prometheus_engine_queries", "prometheus_engine_query_duration_seconds", "prometheus_tsdb_head_series"} {
		if _, ok := mfs[name]; !ok {
			t.Errorf("/metrics lacks family %s", name)
		}
	}
}

func TestReload(t *testing.T) {
	cases := []struct {
		name     string
		o        envOpts
		method   string
		code     int
		body     string
		reloaded int64
	}{
		{"ok", envOpts{}, http.MethodPost, http.StatusOK, "", 1},
		{"ok with PUT", envOpts{}, http.MethodPut, http.StatusOK, "", 1},
		{"failure", envOpts{reloadErr: errors.New("rule_files: bad.yml:3: parse error")}, http.MethodPost, http.StatusInternalServerError, "rule_files: bad.yml:3: parse error", 1},
		{"not available", envOpts{noReload: true}, http.MethodPost, http.StatusNotImplemented, "", 0},
		{"GET is not a reload", envOpts{}, http.MethodGet, http.StatusNotFound, "", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, c.o)
			code, body, _ := e.do(t, c.method, "/-/reload", nil, nil)
			if code != c.code {
				t.Errorf("status %d (%s), want %d", code, body, c.code)
			}
			if !strings.Contains(string(body), c.body) {
				t.Errorf("body %q lacks %q", body, c.body)
			}
			if n := e.reloads.Load(); n != c.reloaded {
				t.Errorf("Reload called %d times, want %d", n, c.reloaded)
			}
		})
	}
}

func TestUnknownPath(t *testing.T) {
	e := newEnv(t, envOpts{token: "tok"})
	for _, p := range []string{"/nope", "/api/v1/nope", "/api/v2/query"} {
		t.Run(p, func(t *testing.T) {
			if code, body := e.get(t, p); code != http.StatusNotFound {
				t.Errorf("%s = %d %s, want 404", p, code, body)
			}
		})
	}
}
