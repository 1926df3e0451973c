package main

// Hostile input at the ingest edge, through the binary: a scrape target and a
// remote-write sender each carrying a label longer than Prometheus' label
// encoding can hold (2^24 bytes). Before issue 10 the first crashed the
// process on its scrape goroutine and the second answered 500 with the good
// series before the bad one already committed.

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// hugeLabel is one byte more than a label can hold.
var hugeLabel = strings.Repeat("a", 1<<24+1)

// TestHostileScrapeTarget: a target exposing a 16 MiB + 1 label value fails
// its scrapes (with label_value_length_limit, the limit's error) while the
// process, and a well-behaved target beside it, go on.
func TestHostileScrapeTarget(t *testing.T) {
	t.Parallel()
	hostile := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "fine_metric 1\nhostile_metric{v=%q} 1\n", hugeLabel)
	}))
	t.Cleanup(hostile.Close)
	good := newExporter(t, 1)
	jobs := scrapeJob("hostile", strings.TrimPrefix(hostile.URL, "http://")) +
		"    label_value_length_limit: 1000\n" +
		scrapeJob("good", good.addr)
	tw := newTidewatch(t, jobs, "")
	tw.start()

	poll(t, 60*time.Second, "the hostile target's failed scrapes and the good one's scrapes", func() error {
		if tw.proc.Exited() {
			t.Fatalf("tidewatch exited: %v\n%s", tw.proc.Err(), tw.proc.Tail(40))
		}
		for job, want := range map[string]string{"hostile": "0", "good": "1"} {
			res, err := decodeResult(mustQuery(t, tw.url, "/api/v1/query", url.Values{"query": {`up{job="` + job + `"}`}}))
			if err != nil {
				return err
			}
			if len(res.Series) != 1 || res.Series[0].Points[0].V != want {
				return fmt.Errorf("up{job=%q} = %v, want %s", job, res, want)
			}
		}
		scrapes, err := countSamples(t.Context(), tw.url, `up{job="hostile"}`)
		if err != nil || scrapes < 3 {
			return fmt.Errorf("%v scrapes of the hostile target so far (%v), want 3", scrapes, err)
		}
		return nil
	})
	status, body, err := apiGet(t.Context(), tw.url, "/api/v1/targets", url.Values{"state": {"active"}}, nil)
	if err != nil || status != http.StatusOK {
		t.Fatalf("targets: %d %v", status, err)
	}
	if !strings.Contains(string(body), "label_value_length_limit") && !strings.Contains(string(body), "label value") {
		t.Errorf("the hostile target's lastError does not name the label limit: %.600s", body)
	}
	// Nothing of the failed scrapes was stored.
	if n, err := countSamples(t.Context(), tw.url, `{__name__=~"fine_metric|hostile_metric"}`); err != nil || n != 0 {
		t.Errorf("samples of the failed scrapes stored: %v (%v), want 0", n, err)
	}
	resp, err := http.Get(tw.url + "/-/healthy")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("tidewatch not healthy after the hostile scrapes: %v %v", resp, err)
	}
	resp.Body.Close()
}

// postRemoteWrite sends one snappy-compressed remote-write body.
func postRemoteWrite(t *testing.T, baseURL, contentType string, pb []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, baseURL+"/api/v1/write", bytes.NewReader(snappy.Encode(nil, pb)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Content-Encoding", "snappy")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := readAll(resp)
	return resp.StatusCode, body
}

// TestHostileRemoteWrite: a remote-write request (1.0 and 2.0) whose middle
// series carries a 16 MiB + 1 label is refused with 400 and the reason, none
// of its series is stored, and a good request afterwards is taken.
func TestHostileRemoteWrite(t *testing.T) {
	t.Parallel()
	tw := newTidewatch(t, "", "")
	tw.start()
	now := time.Now().Add(-5 * time.Second).UnixMilli()

	v1 := func(names ...string) []byte {
		var req prompb.WriteRequest
		for i, n := range names {
			lv := n
			if n == "bad" {
				lv = hugeLabel
			}
			req.Timeseries = append(req.Timeseries, prompb.TimeSeries{
				Labels:  []prompb.Label{{Name: "__name__", Value: "rw_hostile_" + n}, {Name: "v", Value: lv}},
				Samples: []prompb.Sample{{Value: float64(i), Timestamp: now}},
			})
		}
		pb, err := req.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return pb
	}
	v2 := func(names ...string) []byte {
		st := writev2.NewSymbolTable()
		var req writev2.Request
		for i, n := range names {
			lv := n
			if n == "bad" {
				lv = hugeLabel
			}
			req.Timeseries = append(req.Timeseries, writev2.TimeSeries{
				LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "rw2_hostile_"+n, "v", lv), nil),
				Samples:    []writev2.Sample{{Value: float64(i), Timestamp: now}},
			})
		}
		req.Symbols = st.Symbols()
		pb, err := req.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return pb
	}
	for _, c := range []struct {
		name, contentType, prefix string
		body                      func(...string) []byte
	}{
		{"1.0", "application/x-protobuf", "rw_hostile_", v1},
		{"2.0", "application/x-protobuf;proto=io.prometheus.write.v2.Request", "rw2_hostile_", v2},
	} {
		code, msg := postRemoteWrite(t, tw.url, c.contentType, c.body("first", "bad", "last"))
		if code != http.StatusBadRequest || !strings.Contains(msg, "longer than a label may be") {
			t.Errorf("remote write %s with a huge label: %d %q, want 400 naming the label", c.name, code, msg)
		}
		if n, err := countSamples(t.Context(), tw.url, `{__name__=~"`+c.prefix+`.*"}`); err != nil || n != 0 {
			t.Errorf("remote write %s: %v samples of the refused request stored (%v), want 0", c.name, n, err)
		}
		if code, msg := postRemoteWrite(t, tw.url, c.contentType, c.body("first", "last")); code/100 != 2 {
			t.Fatalf("remote write %s of good series afterwards: %d %s", c.name, code, msg)
		}
		if n, err := countSamples(t.Context(), tw.url, `{__name__=~"`+c.prefix+`.*"}`); err != nil || n != 2 {
			t.Errorf("remote write %s: %v samples stored after the good request (%v), want 2", c.name, n, err)
		}
	}
	_, body, err := apiGet(t.Context(), tw.url, "/metrics", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), `tidewatch_receive_rejected_requests_total{receiver="remote_write",reason="label_too_long"} 2`) {
		t.Errorf("/metrics does not count the two refusals")
	}
}
