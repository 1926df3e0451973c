package main

// Shared machinery of the end-to-end tests: TestMain builds the tidewatch
// binary once, and the helpers below run it as a real service (its own
// process, config file and data directory in t.TempDir(), a free loopback
// port), serve deterministic exporters, and read the Prometheus HTTP API.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/internal/testinfra"
)

// twBin is the tidewatch binary built by TestMain.
var twBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tidewatch-e2e-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "create build dir: %v\n", err)
		os.Exit(1)
	}
	twBin = filepath.Join(dir, "tidewatch")
	goTool, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintf(os.Stderr, "find the go tool: %v\n", err)
		os.Exit(1)
	}
	// The tags the Makefile builds with (see TAGS there): the binary under
	// test is the one users run, whatever tags `go test` itself was given.
	build := exec.Command(goTool, "build", "-tags", "slicelabels", "-o", twBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "build tidewatch: %v\n", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// twInstance is one Tidewatch service: a config file and data dir that
// survive restarts, and the running process.
type twInstance struct {
	t      *testing.T
	dir    string
	config string
	addr   string // 127.0.0.1:port
	url    string // http://127.0.0.1:port
	proc   *testinfra.Process
	starts int
}

// newTidewatch prepares (but does not start) a Tidewatch whose config scrapes
// scrapeConfigs (the body of scrape_configs, or "" for none) every second;
// webExtra is added to the web section (indented two spaces per line).
func newTidewatch(t *testing.T, scrapeConfigs, webExtra string) *twInstance {
	t.Helper()
	dir := t.TempDir()
	addr := "127.0.0.1:" + strconv.Itoa(testinfra.FreePort(t))
	tw := &twInstance{t: t, dir: dir, config: filepath.Join(dir, "tidewatch.yml"), addr: addr, url: "http://" + addr}
	tw.writeConfig(scrapeConfigs, webExtra)
	return tw
}

// configYAML is a complete Tidewatch configuration for this instance.
func (tw *twInstance) configYAML(scrapeConfigs, webExtra string) string {
	sc := "scrape_configs: []\n"
	if scrapeConfigs != "" {
		sc = "scrape_configs:\n" + scrapeConfigs
	}
	return fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
%s
storage:
  type: embedded
  embedded:
    path: %s
web:
  listen_address: %s
%s`, sc, filepath.Join(tw.dir, "data"), tw.addr, webExtra)
}

func (tw *twInstance) writeConfig(scrapeConfigs, webExtra string) {
	tw.t.Helper()
	tw.writeRawConfig(tw.configYAML(scrapeConfigs, webExtra))
}

func (tw *twInstance) writeRawConfig(content string) {
	tw.t.Helper()
	if err := os.WriteFile(tw.config, []byte(content), 0o644); err != nil {
		tw.t.Fatalf("write tidewatch config: %v", err)
	}
}

// start runs `tidewatch serve` and waits until /-/ready answers 200.
func (tw *twInstance) start() {
	tw.t.Helper()
	tw.starts++
	p := testinfra.Start(tw.t, fmt.Sprintf("tidewatch-%d", tw.starts),
		[]string{twBin, "serve", "--config", tw.config}, testinfra.WithDir(tw.dir))
	tw.proc = p
	ctx, cancel := context.WithTimeout(tw.t.Context(), 60*time.Second)
	defer cancel()
	if err := p.WaitHTTP(ctx, tw.url+"/-/ready", nil); err != nil {
		tw.t.Fatalf("tidewatch (pid %d) not ready: %v (exited: %v, %v)\n%s", p.PID, err, p.Exited(), p.Err(), p.Tail(40))
	}
}

// scrapeJob is one scrape_configs entry with static targets.
func scrapeJob(name string, targets ...string) string {
	quoted := make([]string, len(targets))
	for i, tg := range targets {
		quoted[i] = strconv.Quote(tg)
	}
	return fmt.Sprintf("  - job_name: %s\n    static_configs:\n      - targets: [%s]\n", name, strings.Join(quoted, ", "))
}

// exporter is an httptest server speaking the Prometheus text format. Each
// request gets the next exposition of a deterministic sequence, so values
// change on every scrape.
type exporter struct {
	srv  *httptest.Server
	addr string
	n    atomic.Int64
}

// newExporter starts exporter number i (i varies slopes, offsets and labels
// so that series of different exporters never tie).
func newExporter(t *testing.T, i int) *exporter {
	t.Helper()
	e := &exporter{}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		io.WriteString(w, exposition(i, e.n.Add(1)))
	}))
	t.Cleanup(e.srv.Close)
	e.addr = strings.TrimPrefix(e.srv.URL, "http://")
	return e
}

// counterBase is where the monotonic counters start.
const counterBase = 1000

// triangle is a gauge pattern that goes up and down.
var triangle = []float64{1, 3, 6, 4, 2, 5, 7, 3}

// exposition is the n-th (1-based) scrape body of exporter i: counters with
// different slopes, a counter that resets, gauges up and down, a classic
// histogram, a summary and an info metric with labels to rewrite. Every value
// carries a per-series fractional signature so no two series are equal.
//
// Counters start far from zero (and the resetting one at its peak): Prometheus
// 2.42 and 3.x cap rate()'s extrapolation at the counter's zero point in a
// different order (2.42 before the "series starts inside the window" test,
// 3.x after it), which changes results for windows that hold a series' first
// sample when that sample is less than ~1.1 scrape increments above zero.
func exposition(i int, n int64) string {
	fi, fn := float64(i), float64(n)
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("# HELP tw_requests_total Requests handled.")
	p("# TYPE tw_requests_total counter")
	p(`tw_requests_total{method="GET",code="200"} %v`, counterBase+fn*(3+fi)+0.001*(fi+1))
	p(`tw_requests_total{method="POST",code="500"} %v`, counterBase+fn*(0.5+0.25*fi)+0.0004*(fi+1))
	p("# HELP tw_resetting_total A counter that restarts every few scrapes.")
	p("# TYPE tw_resetting_total counter")
	p(`tw_resetting_total %v`, float64((n+int64(5+i)-2)%int64(5+i))*(2+fi))
	p("# HELP tw_temperature_celsius Temperature.")
	p("# TYPE tw_temperature_celsius gauge")
	p(`tw_temperature_celsius{room="lab"} %v`, triangle[n%8]+0.1*fi)
	p(`tw_temperature_celsius{room="office"} %v`, 10+1.5*triangle[(n+3)%8]+0.3*fi)
	p("# HELP tw_queue_length Queue length.")
	p("# TYPE tw_queue_length gauge")
	p(`tw_queue_length %v`, float64(n%5)*2+fi)
	b0 := counterBase + fn*(1+fi)
	b1 := b0 + fn*2
	b2 := b1 + fn*float64(1+i%2)
	inf := b2 + fn
	p("# HELP tw_latency_seconds Request latency.")
	p("# TYPE tw_latency_seconds histogram")
	p(`tw_latency_seconds_bucket{le="0.1"} %v`, b0)
	p(`tw_latency_seconds_bucket{le="0.5"} %v`, b1)
	p(`tw_latency_seconds_bucket{le="1"} %v`, b2)
	p(`tw_latency_seconds_bucket{le="+Inf"} %v`, inf)
	p(`tw_latency_seconds_sum %v`, counterBase+fn*(1.37+0.1*fi))
	p(`tw_latency_seconds_count %v`, inf)
	p("# HELP tw_rpc_duration_seconds RPC duration.")
	p("# TYPE tw_rpc_duration_seconds summary")
	p(`tw_rpc_duration_seconds{quantile="0.5"} %v`, 0.05+0.01*float64(n%4)+0.001*fi)
	p(`tw_rpc_duration_seconds{quantile="0.9"} %v`, 0.2+0.02*float64(n%3)+0.001*fi)
	p(`tw_rpc_duration_seconds{quantile="0.99"} %v`, 0.7+0.05*float64(n%2)+0.001*fi)
	p(`tw_rpc_duration_seconds_sum %v`, counterBase+fn*(0.3+0.01*fi))
	p(`tw_rpc_duration_seconds_count %v`, counterBase+fn*2)
	p("# HELP tw_build_info Build information.")
	p("# TYPE tw_build_info gauge")
	p(`tw_build_info{version="v1.%d.3",pod="pod-%d-abc"} 1`, i, i)
	return b.String()
}

// apiResponse is the envelope of the Prometheus HTTP API.
type apiResponse struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Data      struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	} `json:"data"`
}

// apiGet sends GET baseURL+path?params and returns the status and body.
func apiGet(ctx context.Context, baseURL, path string, params url.Values, header http.Header) (int, []byte, error) {
	u := baseURL + path
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, nil, err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// apiQuery runs an API query and returns the decoded envelope, or an error
// for a transport failure, a non-200 status or a non-success body.
func apiQuery(ctx context.Context, baseURL, path string, params url.Values) (apiResponse, error) {
	var r apiResponse
	status, body, err := apiGet(ctx, baseURL, path, params, nil)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return r, fmt.Errorf("%s %s: status %d, undecodable body %.300q: %w", path, params.Encode(), status, body, err)
	}
	if status != http.StatusOK || r.Status != "success" {
		return r, fmt.Errorf("%s %s: status %d: %s: %s", path, params.Encode(), status, r.ErrorType, r.Error)
	}
	return r, nil
}

// mustQuery is apiQuery that fails the test on error.
func mustQuery(t *testing.T, baseURL, path string, params url.Values) apiResponse {
	t.Helper()
	r, err := apiQuery(t.Context(), baseURL, path, params)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// point is one sample of a result; V is kept as the API's string.
type point struct {
	T float64
	V string
}

// series is one series of a result, its labels in canonical form.
type series struct {
	Labels string
	Points []point
}

// result is a decoded query result: a vector or matrix as series, a scalar
// or string as one series with no labels.
type result struct {
	Type   string
	Series []series
}

func (r result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s[", r.Type)
	for _, s := range r.Series {
		fmt.Fprintf(&b, "\n  %s:", s.Labels)
		for _, p := range s.Points {
			fmt.Fprintf(&b, " %s@%.3f", p.V, p.T)
		}
	}
	b.WriteString("]")
	return b.String()
}

// canonicalLabels renders a label set sorted by name.
func canonicalLabels(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + strconv.Quote(m[k])
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func decodePoint(raw [2]json.RawMessage) (point, error) {
	var p point
	if err := json.Unmarshal(raw[0], &p.T); err != nil {
		return p, fmt.Errorf("timestamp %s: %w", raw[0], err)
	}
	if err := json.Unmarshal(raw[1], &p.V); err != nil {
		return p, fmt.Errorf("value %s: %w", raw[1], err)
	}
	return p, nil
}

// decodeResult turns an API response into a result. Series keep the API's
// order; sortSeries puts them in label order.
func decodeResult(r apiResponse) (result, error) {
	out := result{Type: r.Data.ResultType}
	switch r.Data.ResultType {
	case "vector":
		var v []struct {
			Metric map[string]string  `json:"metric"`
			Value  [2]json.RawMessage `json:"value"`
		}
		if err := json.Unmarshal(r.Data.Result, &v); err != nil {
			return out, err
		}
		for _, s := range v {
			p, err := decodePoint(s.Value)
			if err != nil {
				return out, err
			}
			out.Series = append(out.Series, series{Labels: canonicalLabels(s.Metric), Points: []point{p}})
		}
	case "matrix":
		var m []struct {
			Metric map[string]string    `json:"metric"`
			Values [][2]json.RawMessage `json:"values"`
		}
		if err := json.Unmarshal(r.Data.Result, &m); err != nil {
			return out, err
		}
		for _, s := range m {
			ser := series{Labels: canonicalLabels(s.Metric)}
			for _, raw := range s.Values {
				p, err := decodePoint(raw)
				if err != nil {
					return out, err
				}
				ser.Points = append(ser.Points, p)
			}
			out.Series = append(out.Series, ser)
		}
	case "scalar", "string":
		var raw [2]json.RawMessage
		if err := json.Unmarshal(r.Data.Result, &raw); err != nil {
			return out, err
		}
		p, err := decodePoint(raw)
		if err != nil {
			return out, err
		}
		out.Series = []series{{Points: []point{p}}}
	default:
		return out, fmt.Errorf("unknown result type %q", r.Data.ResultType)
	}
	return out, nil
}

func sortSeries(r result) result {
	s := slices.Clone(r.Series)
	slices.SortFunc(s, func(a, b series) int { return strings.Compare(a.Labels, b.Labels) })
	r.Series = s
	return r
}

// sameValue reports whether two API values are equal within 1e-9 relative
// tolerance, NaN equal to NaN and infinities equal to themselves.
func sameValue(a, b string) bool {
	if a == b {
		return true
	}
	fa, errA := strconv.ParseFloat(a, 64)
	fb, errB := strconv.ParseFloat(b, 64)
	if errA != nil || errB != nil {
		return false
	}
	if math.IsNaN(fa) || math.IsNaN(fb) {
		return math.IsNaN(fa) && math.IsNaN(fb)
	}
	if fa == fb {
		return true
	}
	return math.Abs(fa-fb) <= 1e-9*math.Max(math.Abs(fa), math.Abs(fb))
}

// diffResults describes the first difference between want and got ("" when
// they match): result type, series label sets (and order when ordered),
// timestamps exactly and values within sameValue's tolerance.
func diffResults(want, got result, ordered bool) string {
	if want.Type != got.Type {
		return fmt.Sprintf("result type: want %s, got %s", want.Type, got.Type)
	}
	if !ordered {
		want, got = sortSeries(want), sortSeries(got)
	}
	wl := make([]string, len(want.Series))
	for i, s := range want.Series {
		wl[i] = s.Labels
	}
	gl := make([]string, len(got.Series))
	for i, s := range got.Series {
		gl[i] = s.Labels
	}
	if !slices.Equal(wl, gl) {
		return fmt.Sprintf("series (ordered=%v):\n want %v\n got  %v", ordered, wl, gl)
	}
	for i := range want.Series {
		ws, gs := want.Series[i], got.Series[i]
		if len(ws.Points) != len(gs.Points) {
			return fmt.Sprintf("series %s: want %d points, got %d", ws.Labels, len(ws.Points), len(gs.Points))
		}
		for j := range ws.Points {
			wp, gp := ws.Points[j], gs.Points[j]
			if wp.T != gp.T {
				return fmt.Sprintf("series %s point %d: want timestamp %.3f, got %.3f", ws.Labels, j, wp.T, gp.T)
			}
			if !sameValue(wp.V, gp.V) {
				return fmt.Sprintf("series %s at %.3f: want %s, got %s", ws.Labels, wp.T, wp.V, gp.V)
			}
		}
	}
	return ""
}

// fmtTime formats a Unix time in seconds with millisecond precision, as the
// API's time, start and end parameters take it.
func fmtTime(sec float64) string { return strconv.FormatFloat(sec, 'f', 3, 64) }

func unixSeconds(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

// poll calls f every 200 ms until it returns nil or timeout passes, then
// fails the test with f's last error.
func poll(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not reached within %s: %v", what, timeout, err)
		case <-tick.C:
		}
	}
}
