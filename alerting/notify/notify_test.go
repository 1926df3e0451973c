package notify

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/prometheus/alertmanager/alert"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	yaml "go.yaml.in/yaml/v2"

	"github.com/tidewatch/tidewatch/internal/testinfra"
)

// request is what a fake receiver got.
type request struct {
	Method string
	Path   string
	Header http.Header
	Body   map[string]any
}

// fakeService is an httptest server that records JSON requests and answers
// with status() and response.
type fakeService struct {
	*httptest.Server
	reqs chan request
}

func newFakeService(t *testing.T, response string, status func() int) *fakeService {
	t.Helper()
	f := &fakeService{reqs: make(chan request, 100)}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var body map[string]any
		if err := json.Unmarshal(b, &body); err != nil {
			t.Errorf("%s %s: body is not a JSON object: %v: %.300s", r.Method, r.URL.Path, err, b)
		}
		code := http.StatusOK
		if status != nil {
			code = status()
		}
		if code == http.StatusOK {
			f.reqs <- request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		io.WriteString(w, response)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeService) next(t *testing.T, what string) request {
	t.Helper()
	select {
	case r := <-f.reqs:
		return r
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: no request within 20s", what)
		return request{}
	}
}

// none asserts that no further request arrives during d. It can only miss
// a duplicate, never report a false one.
func (f *fakeService) none(t *testing.T, what string, d time.Duration) {
	t.Helper()
	select {
	case r := <-f.reqs:
		t.Errorf("%s: unexpected request %s %s: %v", what, r.Method, r.Path, r.Body)
	case <-time.After(d):
	}
}

func parseConfig(t *testing.T, text string) Config {
	t.Helper()
	var c Config
	if err := yaml.UnmarshalStrict([]byte(text), &c); err != nil {
		t.Fatalf("parse notifications: %v\n%s", err, text)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

// startNotifier runs a notifier with state in dir until the test ends.
func startNotifier(t *testing.T, dir string, c Config) *Notifier {
	t.Helper()
	n, err := New(Options{
		Logger:      slog.New(slog.DiscardHandler),
		Registerer:  prometheus.NewRegistry(),
		Metrics:     metrics.NewSet(),
		DataDir:     dir,
		ExternalURL: &url.URL{Scheme: "http", Host: "localhost:9470"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.ApplyConfig(c); err != nil {
		t.Fatal(err)
	}
	go n.Run(t.Context())
	t.Cleanup(func() {
		n.Close()
	})
	return n
}

func firing(name string, extra model.LabelSet, startsAt time.Time) *alert.Alert {
	ls := model.LabelSet{"alertname": model.LabelValue(name), "severity": "page", "instance": "db-1:9100"}
	for k, v := range extra {
		ls[k] = v
	}
	return alert.New(model.Alert{
		Labels:       ls,
		Annotations:  model.LabelSet{"summary": "disk of db-1 is 93% full", "description": "free space is low"},
		StartsAt:     startsAt,
		EndsAt:       startsAt.Add(time.Hour),
		GeneratorURL: "http://tidewatch.example:9470/graph?g0.expr=up",
	}, time.Now(), false)
}

const route = `
route:
  receiver: all
  group_by: [alertname]
  group_wait: 0s
  group_interval: 100ms
  repeat_interval: 1h
`

// TestReceiversPayloads sends one alert to a receiver with every
// integration and checks each request against the service's documented
// payload: the Alertmanager webhook (version 4), Slack incoming webhooks,
// PagerDuty Events API v2, Microsoft Teams (MessageCard and Adaptive Card),
// Opsgenie Alert API v2, the Telegram Bot API, and e-mail over SMTP with
// STARTTLS and authentication.
func TestReceiversPayloads(t *testing.T) {
	t.Parallel()
	webhook := newFakeService(t, `{}`, nil)
	slack := newFakeService(t, `{"ok":true}`, nil)
	pagerduty := newFakeService(t, `{"status":"success","dedup_key":"k"}`, nil)
	teams := newFakeService(t, `{}`, nil)
	teamsV2 := newFakeService(t, `{}`, nil)
	opsgenie := newFakeService(t, `{"result":"Request will be processed","requestId":"r"}`, nil)
	telegram := newFakeService(t, `{"ok":true,"result":{"message_id":7,"chat":{"id":-100}}}`, nil)
	smtp := testinfra.StartSMTPSink(t)

	c := parseConfig(t, route+`
receivers:
  - name: all
    webhook_configs: [{url: "`+webhook.URL+`/hook", send_resolved: true}]
    slack_configs: [{api_url: "`+slack.URL+`/services/T/B/X", channel: "#ops"}]
    pagerduty_configs: [{routing_key: "0123456789abcdef0123456789abcdef", url: "`+pagerduty.URL+`/v2/enqueue"}]
    msteams_configs: [{webhook_url: "`+teams.URL+`/webhookb2/x"}]
    msteamsv2_configs: [{webhook_url: "`+teamsV2.URL+`/workflows/x"}]
    opsgenie_configs: [{api_key: "og-key", api_url: "`+opsgenie.URL+`/"}]
    telegram_configs: [{api_url: "`+telegram.URL+`", bot_token: "123:abc", chat_id: -100}]
    email_configs:
      - to: oncall@example.com
        from: tidewatch@example.com
        smarthost: "`+smtp.Addr+`"
        auth_username: tidewatch
        auth_password: s3cret
        require_tls: true
        tls_config: {insecure_skip_verify: true}
`)
	n := startNotifier(t, t.TempDir(), c)
	if err := n.Send(firing("DiskFull", nil, time.Now())); err != nil {
		t.Fatal(err)
	}

	t.Run("webhook", func(t *testing.T) {
		r := webhook.next(t, "webhook")
		checkJSONPost(t, r, "/hook")
		want := map[string]any{"version": "4", "status": "firing", "receiver": "all", "truncatedAlerts": float64(0)}
		for k, v := range want {
			if r.Body[k] != v {
				t.Errorf("%s = %v, want %v", k, r.Body[k], v)
			}
		}
		if gl, _ := r.Body["groupLabels"].(map[string]any); gl["alertname"] != "DiskFull" {
			t.Errorf("groupLabels = %v", r.Body["groupLabels"])
		}
		for _, k := range []string{"groupKey", "externalURL", "commonLabels", "commonAnnotations"} {
			if _, ok := r.Body[k]; !ok {
				t.Errorf("no %s in %v", k, r.Body)
			}
		}
		alerts, _ := r.Body["alerts"].([]any)
		if len(alerts) != 1 {
			t.Fatalf("alerts = %v", r.Body["alerts"])
		}
		a := alerts[0].(map[string]any)
		if a["status"] != "firing" || a["generatorURL"] != "http://tidewatch.example:9470/graph?g0.expr=up" || a["fingerprint"] == "" {
			t.Errorf("alert = %v", a)
		}
		if ann := a["annotations"].(map[string]any); ann["summary"] != "disk of db-1 is 93% full" {
			t.Errorf("annotations = %v", ann)
		}
	})
	t.Run("slack", func(t *testing.T) {
		r := slack.next(t, "slack")
		checkJSONPost(t, r, "/services/T/B/X")
		if r.Body["channel"] != "#ops" {
			t.Errorf("channel = %v", r.Body["channel"])
		}
		atts, _ := r.Body["attachments"].([]any)
		if len(atts) != 1 {
			t.Fatalf("attachments = %v", r.Body["attachments"])
		}
		att := atts[0].(map[string]any)
		if title, _ := att["title"].(string); !strings.HasPrefix(title, "[FIRING:1] DiskFull") {
			t.Errorf("title = %q", title)
		}
		if att["color"] != "danger" {
			t.Errorf("color = %v", att["color"])
		}
	})
	t.Run("pagerduty", func(t *testing.T) {
		r := pagerduty.next(t, "pagerduty")
		checkJSONPost(t, r, "/v2/enqueue")
		if r.Body["routing_key"] != "0123456789abcdef0123456789abcdef" || r.Body["event_action"] != "trigger" {
			t.Errorf("routing_key/event_action = %v/%v", r.Body["routing_key"], r.Body["event_action"])
		}
		if dk, _ := r.Body["dedup_key"].(string); dk == "" {
			t.Error("no dedup_key")
		}
		p, _ := r.Body["payload"].(map[string]any)
		if s, _ := p["summary"].(string); !strings.Contains(s, "DiskFull") || p["severity"] == nil || p["source"] == nil {
			t.Errorf("payload = %v", p)
		}
	})
	t.Run("msteams", func(t *testing.T) {
		r := teams.next(t, "msteams")
		checkJSONPost(t, r, "/webhookb2/x")
		if r.Body["@type"] != "MessageCard" && r.Body["type"] != "MessageCard" {
			t.Errorf("card type = %v / %v", r.Body["@type"], r.Body["type"])
		}
		if title, _ := r.Body["title"].(string); !strings.Contains(title, "DiskFull") {
			t.Errorf("title = %q", title)
		}
		if r.Body["themeColor"] == nil || r.Body["text"] == nil {
			t.Errorf("body = %v", r.Body)
		}
	})
	t.Run("msteamsv2", func(t *testing.T) {
		r := teamsV2.next(t, "msteamsv2")
		checkJSONPost(t, r, "/workflows/x")
		atts, _ := r.Body["attachments"].([]any)
		if r.Body["type"] != "message" || len(atts) != 1 {
			t.Fatalf("body = %v", r.Body)
		}
		att := atts[0].(map[string]any)
		if att["contentType"] != "application/vnd.microsoft.card.adaptive" {
			t.Errorf("contentType = %v", att["contentType"])
		}
		content := att["content"].(map[string]any)
		if content["type"] != "AdaptiveCard" {
			t.Errorf("content type = %v", content["type"])
		}
	})
	t.Run("opsgenie", func(t *testing.T) {
		r := opsgenie.next(t, "opsgenie")
		checkJSONPost(t, r, "/v2/alerts")
		if got := r.Header.Get("Authorization"); got != "GenieKey og-key" {
			t.Errorf("Authorization = %q", got)
		}
		if m, _ := r.Body["message"].(string); !strings.Contains(m, "DiskFull") {
			t.Errorf("message = %v", r.Body["message"])
		}
		if a, _ := r.Body["alias"].(string); a == "" {
			t.Error("no alias")
		}
	})
	t.Run("telegram", func(t *testing.T) {
		r := telegram.next(t, "telegram")
		if r.Method != http.MethodPost || r.Path != "/bot123:abc/sendMessage" {
			t.Errorf("%s %s, want POST /bot123:abc/sendMessage", r.Method, r.Path)
		}
		if r.Body["chat_id"] != "-100" {
			t.Errorf("chat_id = %v", r.Body["chat_id"])
		}
		if text, _ := r.Body["text"].(string); !strings.Contains(text, "DiskFull") {
			t.Errorf("text = %q", text)
		}
		if r.Body["parse_mode"] != "HTML" {
			t.Errorf("parse_mode = %v", r.Body["parse_mode"])
		}
	})
	t.Run("email", func(t *testing.T) {
		var m testinfra.Mail
		select {
		case m = <-smtp.Mails:
		case <-time.After(20 * time.Second):
			t.Fatal("no mail within 20s")
		}
		if !m.TLS || m.Username != "tidewatch" || m.Password != "s3cret" {
			t.Errorf("tls=%v user=%q password=%q, want STARTTLS and auth", m.TLS, m.Username, m.Password)
		}
		if m.From != "tidewatch@example.com" || len(m.To) != 1 || m.To[0] != "oncall@example.com" {
			t.Errorf("envelope from %q to %q", m.From, m.To)
		}
		if !strings.Contains(m.Data, "Subject: [FIRING:1] DiskFull") {
			t.Errorf("no subject in:\n%.800s", m.Data)
		}
		if !strings.Contains(m.Data, "disk of db-1 is 93% full") {
			t.Errorf("no summary in body:\n%.2000s", m.Data)
		}
	})
}

func checkJSONPost(t *testing.T, r request, path string) {
	t.Helper()
	if r.Method != http.MethodPost || r.Path != path {
		t.Errorf("%s %s, want POST %s", r.Method, r.Path, path)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q", ct)
	}
	if ua := r.Header.Get("User-Agent"); !strings.HasPrefix(ua, "Alertmanager/") {
		t.Errorf("User-Agent = %q", ua)
	}
}

// TestReceiverDownThenBack: a webhook that fails for a while gets the
// notification once it is back, exactly once.
func TestReceiverDownThenBack(t *testing.T) {
	t.Parallel()
	var failures atomic.Int64
	webhook := newFakeService(t, `{}`, func() int {
		if failures.Load() < 3 {
			failures.Add(1)
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	c := parseConfig(t, route+`
receivers:
  - name: all
    webhook_configs: [{url: "`+webhook.URL+`/hook"}]
`)
	n := startNotifier(t, t.TempDir(), c)
	if err := n.Send(firing("Flappy", nil, time.Now())); err != nil {
		t.Fatal(err)
	}
	r := webhook.next(t, "webhook after recovery")
	if got := failures.Load(); got != 3 {
		t.Errorf("%d failed attempts before success, want 3", got)
	}
	if alerts, _ := r.Body["alerts"].([]any); len(alerts) != 1 {
		t.Errorf("alerts = %v", r.Body["alerts"])
	}
	// Several group_intervals pass: the notification log stops re-sends.
	webhook.none(t, "after the successful delivery", time.Second)
}

// TestRestartNoDuplicate: a notifier restarted on the same data dir does
// not send again a notification already sent inside repeat_interval, and
// keeps its silences.
func TestRestartNoDuplicate(t *testing.T) {
	t.Parallel()
	webhook := newFakeService(t, `{}`, nil)
	c := parseConfig(t, route+`
receivers:
  - name: all
    webhook_configs: [{url: "`+webhook.URL+`/hook"}]
`)
	dir := t.TempDir()
	started := time.Now().Add(-time.Minute)
	first, err := New(Options{Logger: slog.New(slog.DiscardHandler), Registerer: prometheus.NewRegistry(), Metrics: metrics.NewSet(), DataDir: dir, ExternalURL: &url.URL{Scheme: "http", Host: "localhost:9470"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := first.ApplyConfig(c); err != nil {
		t.Fatal(err)
	}
	go first.Run(t.Context())
	if err := first.Send(firing("Persistent", nil, started)); err != nil {
		t.Fatal(err)
	}
	webhook.next(t, "first notification")
	// The delivery is logged once the webhook has answered.
	for deadline := time.Now().Add(20 * time.Second); ; {
		if b, err := first.nflog.MarshalBinary(); err == nil && len(b) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the notification log has no entry 20s after the delivery")
		}
		time.Sleep(10 * time.Millisecond)
	}
	first.Close()

	second := startNotifier(t, dir, c)
	if err := second.Send(firing("Persistent", nil, started)); err != nil {
		t.Fatal(err)
	}
	// A different alert goes through: the pipeline runs and its
	// notification holds only the new alert.
	if err := second.Send(firing("Other", nil, time.Now())); err != nil {
		t.Fatal(err)
	}
	r := webhook.next(t, "notification of the new alert")
	if gl, _ := r.Body["groupLabels"].(map[string]any); gl["alertname"] != "Other" {
		t.Fatalf("got a notification for %v, want only Other (Persistent was already sent)", gl)
	}
	webhook.none(t, "Persistent after restart", time.Second)
}
