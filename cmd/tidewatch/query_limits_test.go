package main

// End-to-end regression tests for issue 10 point 6, "one 58-byte query can
// take the machine" and "timeouts do not bound the work", through the
// binary: the limits of the query and web sections.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/internal/testinfra"
)

// queryOfDeath peaked at 5.4 GB RSS on 6480e51 before max_samples stopped it.
const queryOfDeath = "count_over_time(vector(1)[2d:1ms])"

// apiError decodes an error envelope.
func apiError(t *testing.T, body []byte) (errorType, msg string) {
	t.Helper()
	var r apiResponse
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("undecodable body %.300q: %v", body, err)
	}
	if r.Status != "error" {
		t.Fatalf("status %q, want error: %.300s", r.Status, body)
	}
	return r.ErrorType, r.Error
}

// engineQueries reads prometheus_engine_queries from /metrics.
func engineQueries(ctx context.Context, base string) (float64, error) {
	code, body, err := apiGet(ctx, base, "/metrics", nil, nil)
	if err != nil {
		return 0, err
	}
	if code != http.StatusOK {
		return 0, fmt.Errorf("/metrics: %d", code)
	}
	for line := range strings.SplitSeq(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "prometheus_engine_queries "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, errors.New("/metrics has no prometheus_engine_queries")
}

func TestQueryLimits(t *testing.T) {
	tw := newTidewatch(t, "", "  read_timeout: 2s\n")
	tw.writeRawConfig(tw.configYAML("", "  read_timeout: 2s\n") + "query:\n  timeout: 1m\n  max_concurrency: 2\n")
	tw.start()
	ctx := t.Context()

	t.Run("the query of death is refused before it allocates", func(t *testing.T) {
		// Six at once were OOM-killed at 24 GB.
		var wg sync.WaitGroup
		codes := make([]int, 6)
		bodies := make([][]byte, 6)
		errs := make([]error, 6)
		for i := range 6 {
			wg.Go(func() {
				codes[i], bodies[i], errs[i] = apiGet(ctx, tw.url, "/api/v1/query", url.Values{"query": {queryOfDeath}}, nil)
			})
		}
		wg.Wait()
		for i := range 6 {
			if errs[i] != nil {
				t.Fatalf("query %d: %v", i, errs[i])
			}
			if codes[i] != http.StatusUnprocessableEntity {
				t.Fatalf("query %d = %d %.300s, want 422", i, codes[i], bodies[i])
			}
			if typ, msg := apiError(t, bodies[i]); typ != "execution" || !strings.Contains(msg, "query processing would load too many samples into memory") {
				t.Errorf("query %d: %s %q, want execution, too many samples", i, typ, msg)
			}
		}
		code, _, err := apiGet(ctx, tw.url, "/api/v1/query_range", url.Values{"query": {"count_over_time(up[30d:1ms])"}, "start": {"0"}, "end": {"3600"}, "step": {"60"}}, nil)
		if err != nil || code != http.StatusUnprocessableEntity {
			t.Errorf("range query of count_over_time(up[30d:1ms]) = %d, %v; want 422", code, err)
		}
		if code, _, err := apiGet(ctx, tw.url, "/-/healthy", nil, nil); err != nil || code != http.StatusOK {
			t.Fatalf("/-/healthy after the queries = %d, %v", code, err)
		}
		const bound = 1 << 30
		rss := peakRSS(t, tw.proc.PID)
		t.Logf("peak RSS after 6 queries of death: %d MiB", rss>>20)
		if rss > bound {
			t.Errorf("peak RSS %d MiB, want under %d MiB", rss>>20, bound>>20)
		}
	})

	t.Run("too long or too deep is a 400 before parsing", func(t *testing.T) {
		deep := strings.Repeat("(", 5000) + "1" + strings.Repeat(")", 5000)
		chain := "1" + strings.Repeat("+1", 20_000) // 40 KB: seconds to parse, far longer to evaluate or format on 6480e51
		long := strings.Repeat("x", 70_000)
		for _, c := range []struct{ path, query, want string }{
			{"/api/v1/query", deep, "nested too deeply"},
			{"/api/v1/query", long, "query.max_length"},
			{"/api/v1/query_range", chain, "nested too deeply"},
			{"/api/v1/format_query", chain, "nested too deeply"},
			{"/api/v1/parse_query", deep, "nested too deeply"},
		} {
			req, err := http.NewRequestWithContext(ctx, "POST", tw.url+c.path, strings.NewReader(url.Values{"query": {c.query}}.Encode()))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s: %v", c.path, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("%s of %d bytes = %d %.200s, want 400", c.path, len(c.query), resp.StatusCode, body)
				continue
			}
			if typ, msg := apiError(t, body); typ != "bad_data" || !strings.Contains(msg, c.want) {
				t.Errorf("%s: %s %q, want bad_data saying %q", c.path, typ, msg, c.want)
			}
		}
	})

	t.Run("features", func(t *testing.T) {
		code, body, err := apiGet(ctx, tw.url, "/api/v1/features", nil, nil)
		if err != nil || code != http.StatusOK {
			t.Fatalf("/api/v1/features = %d %.300s, %v; want 200", code, body, err)
		}
		var r struct {
			Status string                     `json:"status"`
			Data   map[string]map[string]bool `json:"data"`
		}
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatalf("features %.300s: %v", body, err)
		}
		if r.Status != "success" || !r.Data["promql"]["subqueries"] || !r.Data["api"]["remote_write_receiver"] || !r.Data["promql_functions"]["rate"] {
			t.Errorf("features %.500s lack promql.subqueries, api.remote_write_receiver or promql_functions.rate", body)
		}
	})

	t.Run("queries beyond max_concurrency wait", func(t *testing.T) {
		// Within every limit, but a minute or so of work: 1.7 million steps
		// of 24 vector operations each, during which the engine checks its context.
		slow := "count_over_time((vector(time())" + strings.Repeat(" + vector(time())", 23) + ")[1d:50ms])"
		slowCtx, cancelSlow := context.WithCancel(ctx)
		defer cancelSlow()
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				_, _, _ = apiGet(slowCtx, tw.url, "/api/v1/query", url.Values{"query": {slow}}, nil)
			})
		}
		poll(t, 30*time.Second, "two slow queries running", func() error {
			n, err := engineQueries(ctx, tw.url)
			if err == nil && n != 2 {
				err = fmt.Errorf("prometheus_engine_queries = %v", n)
			}
			return err
		})
		// A third query waits for a slot until its own timeout.
		code, body, err := apiGet(ctx, tw.url, "/api/v1/query", url.Values{"query": {"vector(1)"}, "timeout": {"1s"}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if code != http.StatusServiceUnavailable {
			t.Fatalf("a third query while two run = %d %.300s, want 503 after waiting", code, body)
		}
		if typ, msg := apiError(t, body); typ != "timeout" || !strings.Contains(msg, "query queue") {
			t.Errorf("third query: %s %q, want a timeout in the query queue", typ, msg)
		}
		// The slow queries stop with their clients, and the slots free.
		cancelSlow()
		wg.Wait()
		poll(t, 30*time.Second, "the slow queries ending with their clients", func() error {
			n, err := engineQueries(ctx, tw.url)
			if err == nil && n != 0 {
				err = fmt.Errorf("prometheus_engine_queries = %v", n)
			}
			return err
		})
		mustQuery(t, tw.url, "/api/v1/query", url.Values{"query": {"vector(1)"}})
	})

	t.Run("a trickled body is cut off at web.read_timeout", func(t *testing.T) {
		const bodyLen = 300
		sent, status, ended := testinfra.TrickleQuery(t, tw.addr, bodyLen, 100*time.Millisecond)
		if !ended {
			t.Fatalf("the server read a body trickled over %v with web.read_timeout 2s", bodyLen*100*time.Millisecond)
		}
		t.Logf("request ended after %d of %d bytes: %q", sent, bodyLen, status)
	})
}
