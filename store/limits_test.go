package store_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/features"

	"github.com/tidewatch/tidewatch/store"
)

func TestCheckQueryText(t *testing.T) {
	chain := func(n int, op string) string { return "up" + strings.Repeat(op+"up", n) }
	nest := func(n int) string { return strings.Repeat("abs(", n) + "up" + strings.Repeat(")", n) }
	cases := []struct {
		name  string
		q     string
		depth int
		want  error
	}{
		{"simple", `sum by (job) (rate(http_requests_total{job="api"}[5m]))`, 3, nil},
		{"brackets count", `sum by (job) (rate(http_requests_total{job="api"}[5m]))`, 2, store.ErrQueryTooDeep},
		{"nesting at the limit", nest(10), 10, nil},
		{"nesting over the limit", nest(11), 10, store.ErrQueryTooDeep},
		{"unclosed nesting", strings.Repeat("(", 11), 10, store.ErrQueryTooDeep},
		{"chain at the limit", chain(10, " or "), 10, nil},
		{"chain over the limit", chain(11, " + "), 10, store.ErrQueryTooDeep},
		{"keywords are case-insensitive", chain(11, " OR "), 10, store.ErrQueryTooDeep},
		{"comparison operators", chain(11, " >= "), 10, store.ErrQueryTooDeep},
		{"atan2", chain(11, " atan2 "), 10, store.ErrQueryTooDeep},
		{"a closed group's chain is done", "(" + chain(8, "+") + ") + (" + chain(8, "+") + ")", 10, nil},
		{"chain inside a group adds to it", "abs(abs(" + chain(9, "-") + "))", 10, store.ErrQueryTooDeep},
		{"matchers are not operators", `up{a="1",b!="2",c=~"3",d!~"4",e="5",f="6",g="7",h="8",i="9",j="0",k="1",l="2"}`, 1, nil},
		{"label names that are keywords", `up{or="1",and="2",unless="3"}`, 1, nil},
		{"strings do not count", `label_replace(up, "a", "((((((((((((+-*/", "b", "))))")`, 1, nil},
		{"escaped quotes", `up{a="\"((((((((((((\""}`, 1, nil},
		{"raw strings", "up{a=`((((((((((((\\`}", 1, nil},
		{"comments do not count", "up # ((((((((((((\n", 0, nil},
		{"comment ends at the line", "up # (\n + up + up", 1, store.ErrQueryTooDeep},
		{"metric names with colons", "job:up:sum", 0, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := store.CheckQueryText(c.q, 1<<20, c.depth)
			if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Errorf("CheckQueryText(%q, depth %d) = %v, want %v", c.q, c.depth, err, c.want)
			}
		})
	}
	t.Run("length", func(t *testing.T) {
		if err := store.CheckQueryText(strings.Repeat("a", 100), 100, 1); err != nil {
			t.Errorf("100 bytes within 100: %v", err)
		}
		err := store.CheckQueryText(strings.Repeat("a", 101), 100, 1)
		if !errors.Is(err, store.ErrQueryTooLong) || !strings.Contains(err.Error(), "101 bytes") {
			t.Errorf("101 bytes over 100: %v", err)
		}
	})
	t.Run("defaults keep long dashboard or-chains", func(t *testing.T) {
		var b strings.Builder
		b.WriteString(`sum by (job) (rate(http_requests_total{job="api-0",code=~"5.."}[5m]))`)
		for i := 1; b.Len() < 60_000; i++ {
			fmt.Fprintf(&b, ` or sum by (job) (rate(http_requests_total{job="api-%d",code=~"5.."}[5m]))`, i)
		}
		c := store.DefaultQueryConfig
		if err := store.CheckQueryText(b.String(), c.MaxLength, c.MaxDepth); err != nil {
			t.Errorf("a %d-byte or-chain: %v", b.Len(), err)
		}
	})
}

// empty answers every query with no series.
var empty = storage.QueryableFunc(func(int64, int64) (storage.Querier, error) { return storage.NoopQuerier(), nil })

func TestLimitedEngineEstimate(t *testing.T) {
	c := store.DefaultQueryConfig
	c.MaxSamples = 1_000_000
	logger := slog.New(slog.DiscardHandler)
	eng := store.NewLimitedEngine(store.NewEngine(c, logger, nil), c)
	now := time.Unix(1_700_000_000, 0)
	cases := []struct {
		name        string
		q           string
		rangeOf     time.Duration // 0: an instant query
		step        time.Duration
		tooMany     bool
		samplesRead bool
		wantInText  string
	}{
		{name: "the query of death", q: `count_over_time(vector(1)[2d:1ms])`, tooMany: true, wantInText: "subquery [2d:1ms]"},
		{name: "on a selector", q: `count_over_time(up[30d:1ms])`, tooMany: true},
		{name: "a subquery within the limit", q: `count_over_time(vector(1)[1d:1s])`},
		{name: "the default step is a minute", q: `count_over_time(vector(1)[30d:])`},
		{name: "a default step over the limit", q: `count_over_time(vector(1)[5y:])`, tooMany: true},
		{name: "nested subqueries widen the inner range", q: `max_over_time(count_over_time(vector(1)[1h:10ms])[12h:1m])`, tooMany: true, wantInText: "[1h:10ms]"},
		{name: "the inner subquery alone fits", q: `count_over_time(vector(1)[1h:10ms])`},
		{name: "a range query widens its subqueries", q: `count_over_time(vector(1)[1h:10ms])`, rangeOf: 12 * time.Hour, step: time.Hour, tooMany: true},
		{name: "@ pins a subquery to an instant", q: `count_over_time(vector(1)[1h:10ms] @ 1700000000)`, rangeOf: 12 * time.Hour, step: time.Hour},
		{name: "a range function over a huge window at every step", q: `sum_over_time(sum_over_time(vector(1)[1h:10ms])[1h:1s])`, samplesRead: true, wantInText: "3601 steps of 360000 points"},
		{name: "a range function over a subquery in a range query", q: `avg_over_time(vector(1)[7d:1m])`, rangeOf: 30 * 24 * time.Hour, step: time.Minute, samplesRead: true},
		{name: "a week of hourly steps over a month at a minute", q: `avg_over_time(vector(1)[30d:1m])`, rangeOf: 7 * 24 * time.Hour, step: time.Hour},
		{name: "a dashboard's max of rates", q: `max_over_time(rate(up[5m])[1h:1m])`, rangeOf: 7 * 24 * time.Hour, step: 5 * time.Minute},
		{name: "too many steps", q: `vector(1)`, rangeOf: 30 * 24 * time.Hour, step: time.Second, tooMany: true, wantInText: "steps"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			var (
				q   promql.Query
				err error
			)
			if c.rangeOf == 0 {
				q, err = eng.NewInstantQuery(ctx, empty, nil, c.q, now)
			} else {
				q, err = eng.NewRangeQuery(ctx, empty, nil, c.q, now.Add(-c.rangeOf), now, c.step)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			res := q.Exec(ctx)
			var (
				tms  promql.ErrTooManySamples
				tmsr promql.ErrTooManySamplesRead
			)
			if got := errors.As(res.Err, &tms); got != c.tooMany {
				t.Fatalf("Exec error %v; want ErrTooManySamples: %v", res.Err, c.tooMany)
			}
			if got := errors.As(res.Err, &tmsr); got != c.samplesRead {
				t.Fatalf("Exec error %v; want ErrTooManySamplesRead: %v", res.Err, c.samplesRead)
			}
			if c.wantInText != "" && !strings.Contains(res.Err.Error(), c.wantInText) {
				t.Errorf("error %q does not say %q", res.Err, c.wantInText)
			}
		})
	}
	t.Run("text limits come first", func(t *testing.T) {
		_, err := eng.NewInstantQuery(context.Background(), empty, nil, strings.Repeat("(", 2000)+"1"+strings.Repeat(")", 2000), now)
		if !errors.Is(err, store.ErrQueryTooDeep) {
			t.Errorf("NewInstantQuery of a 2000-deep expression = %v, want ErrQueryTooDeep", err)
		}
	})
}

// TestMaxConcurrency runs max_concurrency+1 queries that block inside the
// engine: the extra one waits for a slot, and gives up when its context ends.
func TestMaxConcurrency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := store.DefaultQueryConfig
		c.MaxConcurrency = 2
		eng := store.NewEngine(c, slog.New(slog.DiscardHandler), nil)
		release := make(chan struct{})
		var running atomic.Int32
		block := func(context.Context) error {
			running.Add(1)
			<-release
			return nil
		}
		done := make(chan error, 3)
		for range 3 {
			go func() { done <- eng.NewTestQuery(block).Exec(context.Background()).Err }()
		}
		synctest.Wait()
		if got := running.Load(); got != 2 {
			t.Fatalf("%d queries running, want max_concurrency = 2", got)
		}
		close(release)
		for range 3 {
			if err := <-done; err != nil {
				t.Errorf("query: %v", err)
			}
		}
		if got := running.Load(); got != 3 {
			t.Errorf("%d queries ran, want 3: the waiting one runs once a slot frees", got)
		}

		// A query waiting for a slot ends with its context.
		hold := make(chan struct{})
		for range 2 {
			go func() {
				done <- eng.NewTestQuery(func(context.Context) error { <-hold; return nil }).Exec(context.Background()).Err
			}()
		}
		synctest.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		ran := false
		err := eng.NewTestQuery(func(context.Context) error { ran = true; return nil }).Exec(ctx).Err
		var timeout promql.ErrQueryTimeout
		if ran || !errors.As(err, &timeout) {
			t.Errorf("a queued query past its deadline: ran %v, error %v; want a timeout without running", ran, err)
		}
		close(hold)
		<-done
		<-done
	})
}

func TestRegisterQueryFeatures(t *testing.T) {
	r := features.NewRegistry()
	store.RegisterQueryFeatures(r, store.DefaultQueryConfig)
	got := r.Get()
	for _, f := range []struct {
		category, name string
		want           bool
	}{
		{features.PromQL, "at_modifier", true},
		{features.PromQL, "negative_offset", true},
		{features.PromQL, "subqueries", true},
		{features.PromQLFunctions, "rate", true},
		{features.PromQLFunctions, "holt_winters", true},
		{features.PromQLFunctions, "double_exponential_smoothing", true},
		{features.PromQLOperators, "limitk", true},
	} {
		v, ok := got[f.category][f.name]
		if !ok || v != f.want {
			t.Errorf("%s/%s = %v (registered %v), want %v", f.category, f.name, v, ok, f.want)
		}
	}
}

// TestLimitedEngineQueueTimeout: the engine waits for a slot while it
// parses, before Exec; that wait ends at query.timeout too, as a timeout.
func TestLimitedEngineQueueTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := store.DefaultQueryConfig
		c.MaxConcurrency = 1
		c.Timeout = model.Duration(time.Second)
		raw := store.NewEngine(c, slog.New(slog.DiscardHandler), nil)
		eng := store.NewLimitedEngine(raw, c)
		hold := make(chan struct{})
		done := make(chan struct{})
		go func() {
			raw.NewTestQuery(func(context.Context) error { <-hold; return nil }).Exec(context.Background())
			close(done)
		}()
		synctest.Wait()
		q, err := eng.NewInstantQuery(context.Background(), empty, nil, "vector(1)", time.Unix(0, 0))
		if err != nil {
			t.Fatalf("NewInstantQuery = %v, want a query failing on Exec", err)
		}
		var timeout promql.ErrQueryTimeout
		if err := q.Exec(context.Background()).Err; !errors.As(err, &timeout) {
			t.Errorf("Exec = %v, want ErrQueryTimeout", err)
		}
		q.Close()
		close(hold)
		<-done
	})
}
