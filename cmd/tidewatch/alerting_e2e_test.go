package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/internal/testinfra"
)

// control is an exporter whose tw_ctl gauge the test sets.
type control struct {
	srv  *httptest.Server
	addr string
	v    atomic.Int64
}

func newControl(t *testing.T) *control {
	t.Helper()
	c := &control{}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "# TYPE tw_ctl gauge\ntw_ctl %d\n", c.v.Load())
	}))
	t.Cleanup(c.srv.Close)
	c.addr = strings.TrimPrefix(c.srv.URL, "http://")
	return c
}

// hookServer is a webhook receiver recording Alertmanager payloads.
type hookServer struct {
	srv  *httptest.Server
	msgs chan webhookMsg
}

type webhookMsg struct {
	Version     string            `json:"version"`
	Status      string            `json:"status"`
	Receiver    string            `json:"receiver"`
	GroupLabels map[string]string `json:"groupLabels"`
	Alerts      []struct {
		Status      string            `json:"status"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"alerts"`
	at time.Time
}

func newHookServer(t *testing.T) *hookServer {
	t.Helper()
	h := &hookServer{msgs: make(chan webhookMsg, 100)}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m webhookMsg
		if err := json.Unmarshal(b, &m); err != nil {
			t.Errorf("webhook payload: %v: %s", err, b)
		}
		m.at = time.Now()
		h.msgs <- m
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookServer) next(t *testing.T, what string) webhookMsg {
	t.Helper()
	select {
	case m := <-h.msgs:
		return m
	case <-time.After(60 * time.Second):
		t.Fatalf("%s: no webhook call within 60s", what)
		return webhookMsg{}
	}
}

const e2eRules = `groups:
  - name: e2e
    rules:
      - alert: ControlHigh
        expr: tw_ctl > 5
        labels:
          severity: page
        annotations:
          summary: 'tw_ctl is {{ $value }}'
      - alert: Muted
        expr: tw_ctl > 5
`

// alertingConfig is a Tidewatch config scraping ctl every second with the
// e2e rules, extra appended at the top level.
func alertingConfig(tw *twInstance, ctl *control, extra string) string {
	rules := filepath.Join(tw.dir, "rules.yml")
	if err := os.WriteFile(rules, []byte(e2eRules), 0o644); err != nil {
		tw.t.Fatal(err)
	}
	return tw.configYAML(scrapeJob("ctl", ctl.addr), "") + "rule_files: [" + rules + "]\n" + extra
}

// TestAlertingAcceptance: a rule fires; the built-in webhook receiver gets an
// Alertmanager-format payload, then a resolved one after the condition
// clears; the same alert reaches a real Alertmanager 0.25, where amtool
// sees it.
func TestAlertingAcceptance(t *testing.T) {
	t.Parallel()
	am := testinfra.StartAlertmanager(t, "route:\n  receiver: none\n  group_wait: 0s\nreceivers:\n  - name: none\n")
	ctl := newControl(t)
	hook := newHookServer(t)
	tw := newTidewatch(t, "", "")
	tw.writeRawConfig(alertingConfig(tw, ctl, `alerting:
  alertmanagers:
    - static_configs: [{targets: ["`+am.Addr+`"]}]
      api_version: v2
notifications:
  route: {receiver: hook, group_by: [alertname], group_wait: 0s, group_interval: 1s, repeat_interval: 1h}
  receivers:
    - name: hook
      webhook_configs: [{url: "`+hook.srv.URL+`/hook", send_resolved: true}]
`))
	tw.start()
	waitSamples(t, tw, `tw_ctl`, 2, 30*time.Second)

	raised := time.Now()
	ctl.v.Store(10)
	var firing webhookMsg
	for firing.GroupLabels["alertname"] != "ControlHigh" {
		firing = hook.next(t, "firing ControlHigh")
	}
	t.Logf("condition raised to webhook: %s (scrape 1s + evaluation 1s)", firing.at.Sub(raised).Round(time.Millisecond))
	if firing.Version != "4" || firing.Status != "firing" || firing.Receiver != "hook" || len(firing.Alerts) != 1 {
		t.Fatalf("payload = %+v", firing)
	}
	a := firing.Alerts[0]
	if a.Labels["severity"] != "page" || a.Labels["alertname"] != "ControlHigh" || a.Annotations["summary"] != "tw_ctl is 10" {
		t.Errorf("alert = %+v", a)
	}

	t.Run("real alertmanager", func(t *testing.T) {
		poll(t, 30*time.Second, "amtool sees ControlHigh", func() error {
			out, code := runCmd(t, am.Amtool, "alert", "query", "--alertmanager.url="+am.URL, "-o", "json", "alertname=ControlHigh")
			if code != 0 {
				return fmt.Errorf("amtool exited %d: %s", code, out)
			}
			var alerts []struct {
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
			}
			if err := json.Unmarshal([]byte(out), &alerts); err != nil {
				return fmt.Errorf("amtool output: %v: %s", err, out)
			}
			if len(alerts) != 1 || alerts[0].Labels["severity"] != "page" || alerts[0].Annotations["summary"] != "tw_ctl is 10" {
				return fmt.Errorf("amtool shows %s", out)
			}
			return nil
		})
	})

	cleared := time.Now()
	ctl.v.Store(0)
	for {
		m := hook.next(t, "resolved ControlHigh")
		if m.GroupLabels["alertname"] == "ControlHigh" && m.Status == "resolved" {
			t.Logf("condition cleared to resolved webhook: %s", m.at.Sub(cleared).Round(time.Millisecond))
			break
		}
	}
	t.Run("alertmanager resolves", func(t *testing.T) {
		poll(t, 30*time.Second, "ControlHigh resolved in Alertmanager", func() error {
			out, code := runCmd(t, am.Amtool, "alert", "query", "--alertmanager.url="+am.URL, "-o", "json", "alertname=ControlHigh")
			if code != 0 || strings.TrimSpace(out) != "[]" {
				return fmt.Errorf("amtool (exit %d) still shows %s", code, out)
			}
			return nil
		})
	})
}

// TestAlertingSilenceWithAmtool: `amtool silence add` against Tidewatch
// suppresses delivery of the silenced alert, and the silence survives a
// restart.
func TestAlertingSilenceWithAmtool(t *testing.T) {
	t.Parallel()
	amtool := testinfra.Need(t, "prometheus-alertmanager", "amtool")["amtool"]
	ctl := newControl(t)
	hook := newHookServer(t)
	tw := newTidewatch(t, "", "")
	tw.writeRawConfig(alertingConfig(tw, ctl, `notifications:
  route: {receiver: hook, group_by: [alertname], group_wait: 0s, group_interval: 1s, repeat_interval: 1h}
  receivers:
    - name: hook
      webhook_configs: [{url: "`+hook.srv.URL+`/hook"}]
`))
	tw.start()
	out, code := runCmd(t, amtool, "silence", "add", "--alertmanager.url="+tw.url, "-a", "e2e", "-c", "maintenance", "-d", "1h", "alertname=Muted")
	if code != 0 {
		t.Fatalf("amtool silence add exited %d: %s", code, out)
	}
	id := lastLine(out) // amtool may warn first that the versions differ

	ctl.v.Store(10)
	// ControlHigh and Muted fire together; only ControlHigh is delivered.
	m := hook.next(t, "ControlHigh")
	if m.GroupLabels["alertname"] != "ControlHigh" {
		t.Fatalf("got %v first, want ControlHigh (Muted is silenced)", m.GroupLabels)
	}
	poll(t, 30*time.Second, "Muted is firing and silenced", func() error {
		out, code := runCmd(t, amtool, "alert", "query", "--alertmanager.url="+tw.url, "-o", "json", "-s", "alertname=Muted")
		if code != 0 || !strings.Contains(out, id) {
			return fmt.Errorf("amtool alert query (exit %d): %s", code, out)
		}
		return nil
	})
	select {
	case m := <-hook.msgs:
		t.Errorf("unexpected notification %v", m.GroupLabels)
	case <-time.After(3 * time.Second): // three group intervals
	}

	tw.proc.Stop()
	tw.start()
	out, code = runCmd(t, amtool, "silence", "query", "--alertmanager.url="+tw.url, "-q")
	if code != 0 || lastLine(out) != id {
		t.Errorf("after restart amtool silence query -q (exit %d) = %q, want %q", code, out, id)
	}
}

// TestAlertingCheckRules: `tidewatch check rules` on a broken file exits 1
// naming the file and line of each problem.
func TestAlertingCheckRules(t *testing.T) {
	t.Parallel()
	good := filepath.Join("..", "..", "testdata", "rules", "good.yml")
	bad := filepath.Join("..", "..", "testdata", "rules", "broken.bad.yml")
	out, code := runCmd(t, twBin, "check", "rules", good)
	if code != 0 {
		t.Fatalf("check rules %s exited %d:\n%s", good, code, out)
	}
	out, code = runCmd(t, twBin, "check", "rules", good, bad)
	if code != 1 {
		t.Fatalf("check rules exited %d, want 1:\n%s", code, out)
	}
	for _, want := range []string{
		bad + `:7: group "broken", rule 2, "BadExpr": could not parse expression`,
		bad + `:11: group "broken", rule 3, "BadTemplate": annotation "summary"`,
		bad + `:13: group "broken", rule 4, "job:empty": field 'expr' must be set in rule`,
		bad + `:16: field fore not found`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
