package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/autoscaler/backend/webhook"
)

// TestAutoscalerServe is the acceptance through the real binary: `tidewatch
// serve` with a webhook policy whose query returns 10, per_instance 2, min 1,
// max 10 sends one signed webhook asking for 5 replicas; the same policy in
// dry-run decides 5 and calls nothing; `tidewatch autoscaler explain` tells
// why; the decision is stored as series; with notify: true both reach the
// built-in notification receivers as TidewatchScaleEvent alerts.
func TestAutoscalerServe(t *testing.T) {
	var mtx sync.Mutex
	calls := map[string][]webhook.Body{}
	bad := 0
	secret := "correct horse"
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mtx.Lock()
		defer mtx.Unlock()
		if !webhook.Verify([]byte(secret), body, r.Header.Get(webhook.SignatureHeader)) {
			bad++
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var b webhook.Body
		json.Unmarshal(body, &b)
		calls[b.Policy] = append(calls[b.Policy], b)
		fmt.Fprintf(w, `{"replicas": %d}`, b.Desired)
	}))
	defer hook.Close()

	// The built-in notifier's webhook receiver: Alertmanager's payload.
	type amAlert struct {
		Status      string            `json:"status"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	}
	events := map[string]amAlert{}           // policy -> last scale event
	eventIDs := map[string]map[string]bool{} // policy -> decision ids notified
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var msg struct {
			Version string    `json:"version"`
			Alerts  []amAlert `json:"alerts"`
		}
		if err := json.NewDecoder(r.Body).Decode(&msg); err != nil || msg.Version != "4" {
			http.Error(w, "not an Alertmanager webhook payload", http.StatusBadRequest)
			return
		}
		mtx.Lock()
		defer mtx.Unlock()
		for _, a := range msg.Alerts {
			if a.Labels["alertname"] == "TidewatchScaleEvent" {
				p := a.Labels["policy"]
				events[p] = a
				if eventIDs[p] == nil {
					eventIDs[p] = map[string]bool{}
				}
				eventIDs[p][a.Labels["decision_id"]] = true
			}
		}
	}))
	defer receiver.Close()

	tw := newTidewatch(t, "", "")
	secretFile := filepath.Join(tw.dir, "hook.secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tw.writeRawConfig(tw.configYAML("", "") + fmt.Sprintf(`
autoscaling:
  backends:
    - {name: hook, type: webhook, url: %q, secret_file: %q}
  policies:
    - name: api
      target: {backend: hook, kind: Deployment, namespace: shop, name: api}
      min: 1
      max: 10
      interval: 1s
      metrics: [{query: 'vector(10)', per_instance: 2}]
      notify: true
    - name: api-dry
      target: {backend: hook, kind: Deployment, namespace: shop, name: api-canary}
      min: 1
      max: 10
      interval: 1s
      metrics: [{query: 'vector(10)', per_instance: 2}]
      dry_run: true
      notify: true
notifications:
  route: {receiver: scale-events, group_by: [policy], group_wait: 0s, group_interval: 1s, repeat_interval: 1h}
  receivers:
    - name: scale-events
      webhook_configs: [{url: %q}]
`, hook.URL, secretFile, receiver.URL))
	tw.start()

	poll(t, 30*time.Second, "a webhook for api", func() error {
		mtx.Lock()
		defer mtx.Unlock()
		if len(calls["api"]) == 0 {
			return fmt.Errorf("no call yet")
		}
		return nil
	})
	var decisions []struct {
		ID     string `json:"id"`
		Seq    int    `json:"seq"`
		Action string `json:"action"`
	}
	poll(t, 30*time.Second, "three decisions of each policy", func() error {
		for _, p := range []string{"api", "api-dry"} {
			_, body, err := apiGet(t.Context(), tw.url, "/api/v1/autoscaler/decisions", url.Values{"policy": {p}, "limit": {"0"}}, nil)
			if err != nil {
				return err
			}
			var env struct {
				Data json.RawMessage `json:"data"`
			}
			json.Unmarshal(body, &env)
			var ds []struct{ Action string }
			json.Unmarshal(env.Data, &ds)
			if len(ds) < 3 {
				return fmt.Errorf("%s has %d decisions", p, len(ds))
			}
			if p == "api" {
				json.Unmarshal(env.Data, &decisions)
			}
		}
		return nil
	})
	mtx.Lock()
	got := calls["api"]
	if len(got) != 1 || bad != 0 || len(calls["api-dry"]) != 0 {
		t.Errorf("calls: api %d, api-dry %d, bad signatures %d; want 1, 0, 0", len(got), len(calls["api-dry"]), bad)
	}
	mtx.Unlock()
	if b := got[0]; b.Desired != 5 || b.Current != 1 || b.Target.Name != "api" || b.Target.Namespace != "shop" {
		t.Errorf("webhook body: %+v", b)
	}
	for _, d := range decisions {
		if d.ID == got[0].DecisionID && d.Seq > 2 {
			t.Errorf("the webhook came from evaluation %d, want the first or second", d.Seq)
		}
	}

	poll(t, 30*time.Second, "scale events at the notification receiver", func() error {
		mtx.Lock()
		defer mtx.Unlock()
		if len(events) < 2 {
			return fmt.Errorf("events so far: %v", events)
		}
		return nil
	})
	mtx.Lock()
	for policy, want := range map[string]map[string]string{
		"api":     {"action": "scale", "direction": "up", "backend": "hook", "target": "Deployment/shop/api", "decision_id": got[0].DecisionID},
		"api-dry": {"action": "dry_run", "direction": "up", "backend": "hook"},
	} {
		ev := events[policy]
		if ev.Status != "firing" || ev.Annotations["desired_replicas"] != "5" || ev.Annotations["current_replicas"] != "1" {
			t.Errorf("%s scale event: %+v", policy, ev)
		}
		for k, v := range want {
			if ev.Labels[k] != v {
				t.Errorf("%s scale event label %s = %q, want %q (labels %v)", policy, k, ev.Labels[k], v, ev.Labels)
			}
		}
		// One action, and one dry-run recommendation (not one per evaluation).
		if n := len(eventIDs[policy]); n != 1 {
			t.Errorf("%s: %d distinct scale events, want 1", policy, n)
		}
	}
	mtx.Unlock()

	var out, errb bytes.Buffer
	if code := run([]string{"autoscaler", "explain", "api-dry", "--url", tw.url}, &out, &errb); code != 0 {
		t.Fatalf("explain: exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "Dry run: it would have scaled to 5") {
		t.Errorf("explain api-dry:\n%s", out.String())
	}
	out.Reset()
	if code := run([]string{"autoscaler", "explain", "api", "--limit", "3", "--url", tw.url}, &out, &errb); code != 0 || !strings.Contains(out.String(), "Nothing to do: 5 replicas is right") {
		t.Errorf("explain api: exit %d\n%s%s", code, out.String(), errb.String())
	}
	res := mustQuery(t, tw.url, "/api/v1/query", url.Values{"query": {`tidewatch_autoscaler_desired_replicas{policy="api-dry"}`}})
	if r, err := decodeResult(res); err != nil || len(r.Series) != 1 || r.Series[0].Points[0].V != "5" {
		t.Errorf("stored desired replicas: %+v, %v", r, err)
	}
}
