package receive

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/storage"
)

// recorder is an appendable that keeps what is committed, and can panic on
// a given series name.
type recorder struct {
	mtx       sync.Mutex
	committed []string
	panicOn   string
}

func (r *recorder) AppenderV2(context.Context) storage.AppenderV2 { return &recApp{r: r} }

type recApp struct {
	r       *recorder
	pending []string
}

func (a *recApp) Append(_ storage.SeriesRef, ls labels.Labels, _, _ int64, _ float64, _ *histogram.Histogram, _ *histogram.FloatHistogram, _ storage.AppendV2Options) (storage.SeriesRef, error) {
	name := ls.Get(labels.MetricName)
	if name == a.r.panicOn {
		panic("appender bug on " + name)
	}
	a.pending = append(a.pending, name)
	return 1, nil
}

func (a *recApp) AppendExemplars(storage.SeriesRef, labels.Labels, []exemplar.Exemplar) (storage.SeriesRef, error) {
	return 0, nil
}

func (a *recApp) Commit() error {
	a.r.mtx.Lock()
	defer a.r.mtx.Unlock()
	a.r.committed = append(a.r.committed, a.pending...)
	return nil
}

func (a *recApp) Rollback() error { a.pending = nil; return nil }

func newReceiver(t *testing.T, app storage.AppendableV2, ready func() error) (*httptest.Server, *metrics.Set) {
	t.Helper()
	set := metrics.NewSet()
	rw, err := NewRemoteWrite(Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registerer: prometheus.NewRegistry(),
		Metrics: set, Appendable: app, Ready: ready,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rw)
	t.Cleanup(srv.Close)
	return srv, set
}

func v1Body(t *testing.T, series ...prompb.TimeSeries) []byte {
	t.Helper()
	pb, err := (&prompb.WriteRequest{Timeseries: series}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return snappy.Encode(nil, pb)
}

func ts(name, value string) prompb.TimeSeries {
	return prompb.TimeSeries{
		Labels:  []prompb.Label{{Name: "__name__", Value: name}, {Name: "v", Value: value}},
		Samples: []prompb.Sample{{Value: 1, Timestamp: time.Now().UnixMilli()}},
	}
}

func post(t *testing.T, url string, body []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "snappy")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestRemoteWriteRefusals(t *testing.T) {
	huge := strings.Repeat("x", MaxLabelBytes+1)
	cases := []struct {
		name     string
		body     []byte
		panicOn  string
		notReady bool
		code     int
		reason   string
		stored   []string
	}{
		{"good", nil, "", false, http.StatusNoContent, "", []string{"a", "b"}},
		{"label too long", v1Body(t, ts("a", "1"), ts("bad", huge), ts("b", "2")), "", false, http.StatusBadRequest, "label_too_long", nil},
		{"label at the limit", v1Body(t, ts("a", strings.Repeat("x", MaxLabelBytes))), "", false, http.StatusNoContent, "", []string{"a"}},
		{"appender panics", nil, "b", false, http.StatusBadRequest, "panic", nil},
		{"not ready", nil, "", true, http.StatusServiceUnavailable, "unavailable", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := &recorder{panicOn: c.panicOn}
			ready := func() error { return nil }
			if c.notReady {
				ready = func() error { return errors.New("disk full") }
			}
			srv, set := newReceiver(t, rec, ready)
			body := c.body
			if body == nil {
				body = v1Body(t, ts("a", "1"), ts("b", "2"))
			}
			code, msg := post(t, srv.URL, body)
			if code != c.code {
				t.Fatalf("status %d (%q), want %d", code, msg, c.code)
			}
			if c.reason != "" {
				var buf bytes.Buffer
				set.WritePrometheus(&buf)
				want := `tidewatch_receive_rejected_requests_total{receiver="remote_write",reason="` + c.reason + `"} 1`
				if !strings.Contains(buf.String(), want) {
					t.Errorf("metrics lack %s:\n%s", want, buf.String())
				}
			}
			if c.reason == "label_too_long" && !strings.Contains(msg, "longer than a label may be") {
				t.Errorf("refusal %q does not give the reason", msg)
			}
			rec.mtx.Lock()
			defer rec.mtx.Unlock()
			if c.panicOn == "" && strings.Join(rec.committed, ",") != strings.Join(c.stored, ",") {
				t.Errorf("committed %v, want %v", rec.committed, c.stored)
			}
		})
	}
}
