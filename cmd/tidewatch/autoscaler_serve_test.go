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
// why; the decision is stored as series.
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
    - name: api-dry
      target: {backend: hook, kind: Deployment, namespace: shop, name: api-canary}
      min: 1
      max: 10
      interval: 1s
      metrics: [{query: 'vector(10)', per_instance: 2}]
      dry_run: true
`, hook.URL, secretFile))
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
