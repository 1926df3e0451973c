package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/internal/testinfra"
)

// runCmd runs a one-shot command and returns its combined output and exit code.
func runCmd(t *testing.T, name string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &exit) && ctx.Err() == nil:
		return string(out), exit.ExitCode()
	default:
		t.Fatalf("run %s %q: %v\n%s", name, args, err, out)
		return "", -1
	}
}

// countSamples returns sum(count_over_time(expr[1h])) on tw now.
func countSamples(ctx context.Context, baseURL, selector string) (float64, error) {
	r, err := apiQuery(ctx, baseURL, "/api/v1/query", url.Values{"query": {"sum(count_over_time(" + selector + "[1h]))"}})
	if err != nil {
		return 0, err
	}
	res, err := decodeResult(r)
	if err != nil {
		return 0, err
	}
	if len(res.Series) == 0 {
		return 0, nil
	}
	return strconv.ParseFloat(res.Series[0].Points[0].V, 64)
}

// waitSamples polls until selector has at least n samples on tw.
func waitSamples(t *testing.T, tw *twInstance, selector string, n float64, timeout time.Duration) {
	t.Helper()
	poll(t, timeout, fmt.Sprintf("%d samples of %s", int(n), selector), func() error {
		got, err := countSamples(t.Context(), tw.url, selector)
		if err != nil {
			return err
		}
		if got < n {
			return fmt.Errorf("%v samples so far", got)
		}
		return nil
	})
}

// TestAcceptanceScrapeTwoExporters: Tidewatch scrapes two exporters every
// second, and the real promtool reads the results through the HTTP API.
func TestAcceptanceScrapeTwoExporters(t *testing.T) {
	t.Parallel()
	promtool := testinfra.Promtool(t)
	exps := []*exporter{newExporter(t, 0), newExporter(t, 1)}
	tw := newTidewatch(t, scrapeJob("fleet", exps[0].addr, exps[1].addr), "")
	tw.start()

	t.Run("instant up", func(t *testing.T) {
		var out string
		poll(t, 30*time.Second, "promtool shows both targets up", func() error {
			o, code := runCmd(t, promtool, "query", "instant", tw.url, "up")
			out = o
			if code != 0 {
				return fmt.Errorf("promtool exited %d: %s", code, o)
			}
			for _, e := range exps {
				re := regexp.MustCompile(`(?m)^up\{instance="` + regexp.QuoteMeta(e.addr) + `", job="fleet"\} => 1 @\[\d+(\.\d+)?\]$`)
				if !re.MatchString(o) {
					return fmt.Errorf("no up=1 line for %s in:\n%s", e.addr, o)
				}
			}
			return nil
		})
		if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 {
			t.Errorf("promtool printed %d lines, want one per target:\n%s", len(lines), out)
		}
	})

	t.Run("range rate", func(t *testing.T) {
		// Enough scrapes that the first step's 5 s window is full.
		waitSamples(t, tw, `up{job="fleet"}`, 2*13, 30*time.Second)
		end := time.Now().Add(-time.Second).Unix()
		out, code := runCmd(t, promtool, "query", "range",
			"--start="+strconv.FormatInt(end-5, 10), "--end="+strconv.FormatInt(end, 10), "--step=1s",
			tw.url, `rate(tw_requests_total[5s])`)
		if code != 0 {
			t.Fatalf("promtool query range exited %d:\n%s", code, out)
		}
		// Output: a "{labels} =>" header per series, then "value @[ts]" lines.
		header := regexp.MustCompile(`^\{(.*)\} =>$`)
		sample := regexp.MustCompile(`^(\S+) @\[(\d+(?:\.\d+)?)\]$`)
		points := map[string]int{}
		var cur string
		sc := bufio.NewScanner(strings.NewReader(out))
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if m := header.FindStringSubmatch(line); m != nil {
				cur = m[1]
				continue
			}
			m := sample.FindStringSubmatch(line)
			if m == nil || cur == "" {
				t.Errorf("unexpected promtool line %q", line)
				continue
			}
			v, err := strconv.ParseFloat(m[1], 64)
			if err != nil || !(v > 0) {
				t.Errorf("series {%s}: rate %q is not a positive number", cur, m[1])
			}
			points[cur]++
		}
		if len(points) != 4 {
			t.Errorf("got %d series, want 4 (2 exporters x 2 label sets):\n%s", len(points), out)
		}
		for _, e := range exps {
			if !strings.Contains(out, `instance="`+e.addr+`"`) {
				t.Errorf("no series of %s in:\n%s", e.addr, out)
			}
		}
		for s, n := range points {
			if n != 6 {
				t.Errorf("series {%s}: %d points, want 6 (5 s at 1 s steps, both ends included)", s, n)
			}
		}
	})
}

// problemLine returns the 1-based line of file containing substr.
func problemLine(t *testing.T, file, substr string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, substr) {
			return i + 1
		}
	}
	t.Fatalf("%s has no line with %q", file, substr)
	return 0
}

// TestAcceptanceCheckConfig: check config and serve report every problem
// of a bad file as file:line: field: message and exit 1.
func TestAcceptanceCheckConfig(t *testing.T) {
	t.Parallel()
	const bad = "../../testdata/config/unknown-and-duration.bad.yml"
	const good = "../../testdata/config/full.good.yml"
	durLine := problemLine(t, bad, "scrape_interval: 5x")
	keyLine := problemLine(t, bad, "honour_labels:")
	badProblems := []string{
		fmt.Sprintf("%s:%d: scrape_configs[0].scrape_interval: ", bad, durLine),
		fmt.Sprintf("%s:%d: scrape_configs[0].honour_labels: ", bad, keyLine),
	}
	for _, tc := range []struct {
		name     string
		args     []string
		wantCode int
		wantOut  []string
	}{
		{"check bad file", []string{"check", "config", bad}, 1, badProblems},
		{"check good file", []string{"check", "config", good}, 0, []string{good + ": OK"}},
		{"check good and bad", []string{"check", "config", good, bad}, 1, append([]string{good + ": OK"}, badProblems...)},
		{"serve bad file", []string{"serve", "--config", bad, "--web.listen-address", "127.0.0.1:" + strconv.Itoa(testinfra.FreePort(t))}, 1, badProblems},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, code := runCmd(t, twBin, tc.args...)
			if code != tc.wantCode {
				t.Errorf("exit code %d, want %d; output:\n%s", code, tc.wantCode, out)
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// rangeResults runs each query as query_range over [start, end] at 1 s steps
// and returns the results in label order.
func rangeResults(t *testing.T, baseURL string, queries []string, start, end float64) map[string]result {
	t.Helper()
	out := map[string]result{}
	for _, q := range queries {
		r := mustQuery(t, baseURL, "/api/v1/query_range", url.Values{
			"query": {q}, "start": {fmtTime(start)}, "end": {fmtTime(end)}, "step": {"1"},
		})
		res, err := decodeResult(r)
		if err != nil {
			t.Fatalf("decode %s: %v", q, err)
		}
		out[q] = sortSeries(res)
	}
	return out
}

// TestAcceptanceRestart: data survives a graceful stop and a crash.
func TestAcceptanceRestart(t *testing.T) {
	t.Parallel()
	t.Run("sigterm", func(t *testing.T) {
		t.Parallel()
		e := newExporter(t, 0)
		tw := newTidewatch(t, scrapeJob("x", e.addr), "")
		tw.start()
		begin := time.Now()
		waitSamples(t, tw, `up{job="x"}`, 9, 30*time.Second)
		// A fixed window in the past, fully scraped: ~8 s of 1 s scrapes.
		end := float64(time.Now().Add(-time.Second).Unix())
		start := max(end-7, float64(begin.Unix()+1))
		queries := []string{`{job="x"}`, `scrape_samples_scraped`}
		before := rangeResults(t, tw.url, queries, start, end)
		if n := len(before[`{job="x"}`].Series); n < 10 {
			t.Fatalf(`{job="x"} has %d series before the restart, want the exporter's and the scrape series:\n%v`, n, before[`{job="x"}`])
		}

		tw.proc.Stop()
		if !tw.proc.Exited() {
			t.Fatal("tidewatch did not exit on SIGTERM")
		}
		if err := tw.proc.Err(); err != nil {
			t.Fatalf("tidewatch exited with %v on SIGTERM, want status 0\n%s", err, tw.proc.Tail(20))
		}
		tw.start()
		after := rangeResults(t, tw.url, queries, start, end)
		for _, q := range queries {
			if !reflect.DeepEqual(before[q], after[q]) {
				t.Errorf("%s over [%v, %v] changed across the restart: %s\nbefore: %v\nafter:  %v",
					q, start, end, diffResults(before[q], after[q], true), before[q], after[q])
			}
		}
	})

	t.Run("sigkill", func(t *testing.T) {
		t.Parallel()
		e := newExporter(t, 1)
		tw := newTidewatch(t, scrapeJob("x", e.addr), "")
		tw.start()
		waitSamples(t, tw, `up{job="x"}`, 5, 30*time.Second)
		at := fmtTime(unixSeconds(time.Now()))
		raw := func() result {
			r := mustQuery(t, tw.url, "/api/v1/query", url.Values{"query": {`{job="x"}[1h]`}, "time": {at}})
			res, err := decodeResult(r)
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		before := raw()
		tw.proc.Kill()
		tw.start()
		after := raw()
		got := map[string]map[float64]string{}
		for _, s := range after.Series {
			got[s.Labels] = map[float64]string{}
			for _, p := range s.Points {
				got[s.Labels][p.T] = p.V
			}
		}
		total, lost := 0, 0
		for _, s := range before.Series {
			for _, p := range s.Points {
				total++
				if v, ok := got[s.Labels][p.T]; !ok || v != p.V {
					lost++
					if lost <= 5 {
						t.Errorf("sample %s %s@%.3f committed before SIGKILL is missing after restart (got %q)", s.Labels, p.V, p.T, v)
					}
				}
			}
		}
		if total < 5*10 {
			t.Fatalf("only %d samples before the crash; the test needs more", total)
		}
		if lost > 0 {
			t.Errorf("%d of %d samples lost across SIGKILL", lost, total)
		}
	})
}

// targetHealth returns job -> health of the active targets.
func targetHealth(ctx context.Context, baseURL string) (map[string]string, error) {
	status, body, err := apiGet(ctx, baseURL, "/api/v1/targets", url.Values{"state": {"active"}}, nil)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("targets: status %d: %s", status, body)
	}
	var r struct {
		Data struct {
			ActiveTargets []struct {
				Labels map[string]string `json:"labels"`
				Health string            `json:"health"`
			} `json:"activeTargets"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, tg := range r.Data.ActiveTargets {
		out[tg.Labels["job"]] = tg.Health
	}
	return out, nil
}

func waitTargetsUp(t *testing.T, tw *twInstance, jobs ...string) {
	t.Helper()
	poll(t, 30*time.Second, fmt.Sprintf("targets of %v up", jobs), func() error {
		h, err := targetHealth(t.Context(), tw.url)
		if err != nil {
			return err
		}
		for _, j := range jobs {
			if h[j] != "up" {
				return fmt.Errorf("job %s: health %q (all: %v)", j, h[j], h)
			}
		}
		return nil
	})
}

// TestReload: SIGHUP applies a changed config; a bad config on POST
// /-/reload is refused with the problem and the old jobs keep running.
func TestReload(t *testing.T) {
	t.Parallel()
	ea, eb := newExporter(t, 0), newExporter(t, 1)
	tw := newTidewatch(t, scrapeJob("a", ea.addr), "")
	tw.start()
	waitTargetsUp(t, tw, "a")

	t.Run("sighup adds a job", func(t *testing.T) {
		tw.writeConfig(scrapeJob("a", ea.addr)+scrapeJob("b", eb.addr), "")
		if err := syscall.Kill(tw.proc.PID, syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitTargetsUp(t, tw, "a", "b")
		waitSamples(t, tw, `up{job="b"}`, 1, 10*time.Second)
	})

	t.Run("bad config on POST keeps old jobs", func(t *testing.T) {
		tw.writeRawConfig(tw.configYAML(scrapeJob("a", ea.addr)+scrapeJob("b", eb.addr)+"    scrape_intervall: 5s\n", ""))
		resp, err := http.Post(tw.url+"/-/reload", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := readAll(resp)
		if resp.StatusCode != http.StatusInternalServerError {
			t.Errorf("POST /-/reload with a bad config: status %d, want 500; body %s", resp.StatusCode, body)
		}
		wantProblem := fmt.Sprintf("%s:%d: scrape_configs[1].scrape_intervall: unknown field", tw.config, problemLine(t, tw.config, "scrape_intervall"))
		if !strings.Contains(body, wantProblem) {
			t.Errorf("reload error does not name the problem %q:\n%s", wantProblem, body)
		}
		failedAt := time.Now()
		// Both jobs keep being scraped: new up samples after the failed reload.
		poll(t, 15*time.Second, "scrapes after the failed reload", func() error {
			r, err := apiQuery(t.Context(), tw.url, "/api/v1/query", url.Values{"query": {`timestamp(up)`}})
			if err != nil {
				return err
			}
			res, err := decodeResult(r)
			if err != nil {
				return err
			}
			fresh := map[string]bool{}
			for _, s := range res.Series {
				if ts, err := strconv.ParseFloat(s.Points[0].V, 64); err == nil && ts > unixSeconds(failedAt.Add(time.Second)) {
					fresh[s.Labels] = true
				}
			}
			if len(fresh) != 2 {
				return fmt.Errorf("fresh up series %v, want jobs a and b; all: %v", fresh, res)
			}
			return nil
		})
		h, err := targetHealth(t.Context(), tw.url)
		if err != nil {
			t.Fatal(err)
		}
		if h["a"] != "up" || h["b"] != "up" || len(h) != 2 {
			t.Errorf("targets after the failed reload: %v, want a and b up", h)
		}
		status, metrics, err := apiGet(t.Context(), tw.url, "/metrics", nil, nil)
		if err != nil || status != http.StatusOK {
			t.Fatalf("/metrics: %d %v", status, err)
		}
		if !regexp.MustCompile(`(?m)^tidewatch_config_last_reload_successful 0$`).Match(metrics) {
			t.Errorf("/metrics does not report the failed reload (tidewatch_config_last_reload_successful 0)")
		}
	})

	// The Prometheus API's runtime info reports the last reload's outcome, as
	// Prometheus' own does (its UI and tools read reloadConfigSuccess).
	t.Run("runtimeinfo follows reload outcome", func(t *testing.T) {
		reloadOK := func() (bool, time.Time) {
			t.Helper()
			status, body, err := apiGet(t.Context(), tw.url, "/api/v1/status/runtimeinfo", nil, nil)
			if err != nil || status != http.StatusOK {
				t.Fatalf("runtimeinfo: status %d, %v: %s", status, err, body)
			}
			var info struct {
				Data struct {
					ReloadConfigSuccess bool      `json:"reloadConfigSuccess"`
					LastConfigTime      time.Time `json:"lastConfigTime"`
				} `json:"data"`
			}
			if err := json.Unmarshal(body, &info); err != nil {
				t.Fatalf("decode runtimeinfo %s: %v", body, err)
			}
			return info.Data.ReloadConfigSuccess, info.Data.LastConfigTime
		}
		// The config file is still the bad one from the previous subtest.
		if resp, err := http.Post(tw.url+"/-/reload", "", nil); err != nil {
			t.Fatal(err)
		} else {
			readAll(resp)
		}
		if ok, _ := reloadOK(); ok {
			t.Errorf("after a failed reload /api/v1/status/runtimeinfo says reloadConfigSuccess=true")
		}
		tw.writeConfig(scrapeJob("a", ea.addr)+scrapeJob("b", eb.addr), "")
		resp, err := http.Post(tw.url+"/-/reload", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := readAll(resp)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST /-/reload with a good config: status %d: %s", resp.StatusCode, body)
		}
		ok, last := reloadOK()
		if !ok {
			t.Errorf("after a good reload /api/v1/status/runtimeinfo says reloadConfigSuccess=false")
		}
		if last.IsZero() {
			t.Errorf("/api/v1/status/runtimeinfo has no lastConfigTime after a successful reload")
		}
	})
}

func readAll(resp *http.Response) (string, error) {
	defer resp.Body.Close()
	var b strings.Builder
	_, err := bufio.NewReader(resp.Body).WriteTo(&b)
	return b.String(), err
}

// TestBearerToken: with web.bearer_token_file, everything but health needs
// the token.
func TestBearerToken(t *testing.T) {
	t.Parallel()
	tokenFile := filepath.Join(t.TempDir(), "token")
	const token = "s3cr3t-token"
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tw := newTidewatch(t, "", "  bearer_token_file: "+tokenFile+"\n")
	tw.start()
	query := url.Values{"query": {"vector(1)"}}
	for _, tc := range []struct {
		name   string
		path   string
		params url.Values
		auth   string
		want   int
	}{
		{"query without token", "/api/v1/query", query, "", http.StatusUnauthorized},
		{"query with wrong token", "/api/v1/query", query, "Bearer nope", http.StatusUnauthorized},
		{"query with basic auth", "/api/v1/query", query, "Basic " + token, http.StatusUnauthorized},
		{"query with token", "/api/v1/query", query, "Bearer " + token, http.StatusOK},
		{"labels without token", "/api/v1/labels", nil, "", http.StatusUnauthorized},
		{"metrics without token", "/metrics", nil, "", http.StatusUnauthorized},
		{"metrics with token", "/metrics", nil, "Bearer " + token, http.StatusOK},
		{"healthy without token", "/-/healthy", nil, "", http.StatusOK},
		{"ready without token", "/-/ready", nil, "", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.auth != "" {
				h.Set("Authorization", tc.auth)
			}
			status, body, err := apiGet(t.Context(), tw.url, tc.path, tc.params, h)
			if err != nil {
				t.Fatal(err)
			}
			if status != tc.want {
				t.Errorf("GET %s: status %d, want %d; body %.200s", tc.path, status, tc.want, body)
			}
			if tc.want == http.StatusOK && tc.path == "/api/v1/query" && !strings.Contains(string(body), `"status":"success"`) {
				t.Errorf("GET %s: body %.200s", tc.path, body)
			}
		})
	}
}
