package main

// The process lifecycle through the binary: the all-or-nothing reload, and
// no file written outside the configured paths.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/internal/testinfra"
)

// ruleNames lists the rule names /api/v1/rules serves.
func ruleNames(t *testing.T, tw *twInstance) []string {
	t.Helper()
	status, body, err := apiGet(t.Context(), tw.url, "/api/v1/rules", nil, nil)
	if err != nil || status != http.StatusOK {
		t.Fatalf("rules: %d %v %s", status, err, body)
	}
	var r struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name string `json:"name"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, g := range r.Data.Groups {
		for _, rl := range g.Rules {
			names = append(names, rl.Name)
		}
	}
	slices.Sort(names)
	return names
}

// probeJobs lists the probe jobs with active targets.
func probeJobs(t *testing.T, tw *twInstance) []string {
	t.Helper()
	status, body, err := apiGet(t.Context(), tw.url, "/api/v1/probes", nil, nil)
	if err != nil || status != http.StatusOK {
		t.Fatalf("probes: %d %v %s", status, err, body)
	}
	var r struct {
		Data struct {
			ActiveTargets []struct {
				Labels map[string]string `json:"labels"`
			} `json:"activeTargets"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("decode probes %s: %v", body, err)
	}
	var jobs []string
	for _, tg := range r.Data.ActiveTargets {
		if !slices.Contains(jobs, tg.Labels["job"]) {
			jobs = append(jobs, tg.Labels["job"])
		}
	}
	slices.Sort(jobs)
	return jobs
}

// TestReloadAllOrNothing: a reload whose rules, probes, scrape jobs and
// autoscaling all change, but whose last-applied section (the scrape jobs:
// one needs a CA file that does not exist) cannot apply, is refused whole,
// through SIGHUP and through POST /-/reload: every section keeps its old
// configuration. Before the two-phase reload the rules and probes of the new
// file were already running when the scrape jobs failed.
func TestReloadAllOrNothing(t *testing.T) {
	t.Parallel()
	ea, eb := newExporter(t, 0), newExporter(t, 1)
	tw := newTidewatch(t, "", "")
	rules := func(name string) string {
		p := filepath.Join(tw.dir, name+".rules.yml")
		body := fmt.Sprintf("groups:\n  - name: g\n    interval: 1s\n    rules:\n      - record: %s\n        expr: vector(1)\n", name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	config := func(rule, probeJob, scrape string) string {
		return strings.Replace(tw.configYAML(scrape, ""), "scrape_configs:", fmt.Sprintf(`rule_files: [%q]
probe_configs:
  - job_name: %s
    interval: 1s
    module: {prober: tcp}
    static_configs: [{targets: [%q]}]
scrape_configs:`, rules(rule), probeJob, ea.addr), 1)
	}
	good := config("tw_rule_old", "probe_old", scrapeJob("a", ea.addr))
	tw.writeRawConfig(good)
	tw.start()
	waitTargetsUp(t, tw, "a")
	poll(t, 20*time.Second, "old rule and probe running", func() error {
		if r, p := ruleNames(t, tw), probeJobs(t, tw); !slices.Equal(r, []string{"tw_rule_old"}) || !slices.Equal(p, []string{"probe_old"}) {
			return fmt.Errorf("rules %v, probes %v", r, p)
		}
		return nil
	})

	missingCA := filepath.Join(tw.dir, "no-such-ca.pem")
	bad := config("tw_rule_new", "probe_new", scrapeJob("a", ea.addr)+scrapeJob("b", eb.addr)+
		fmt.Sprintf("    tls_config: {ca_file: %q}\n", missingCA))
	checkOld := func(t *testing.T) {
		t.Helper()
		// Give a mixed reload time to show (rules evaluate every second).
		time.Sleep(3 * time.Second)
		if r := ruleNames(t, tw); !slices.Equal(r, []string{"tw_rule_old"}) {
			t.Errorf("rules after the refused reload: %v, want the old [tw_rule_old]", r)
		}
		if n, err := countSamples(t.Context(), tw.url, `tw_rule_new`); err != nil || n != 0 {
			t.Errorf("the refused file's rule was evaluated: %v samples (%v)", n, err)
		}
		if p := probeJobs(t, tw); !slices.Equal(p, []string{"probe_old"}) {
			t.Errorf("probe jobs after the refused reload: %v, want the old [probe_old]", p)
		}
		h, err := targetHealth(t.Context(), tw.url)
		if err != nil {
			t.Fatal(err)
		}
		if len(h) != 1 || h["a"] != "up" {
			t.Errorf("scrape targets after the refused reload: %v, want job a only", h)
		}
	}

	t.Run("POST /-/reload", func(t *testing.T) {
		tw.writeRawConfig(bad)
		resp, err := http.Post(tw.url+"/-/reload", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := readAll(resp)
		if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(body, "no-such-ca.pem") {
			t.Errorf("POST /-/reload: %d %q, want 500 naming the missing CA file", resp.StatusCode, body)
		}
		checkOld(t)
	})
	t.Run("SIGHUP", func(t *testing.T) {
		tw.writeRawConfig(bad)
		if err := syscall.Kill(tw.proc.PID, syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		checkOld(t)
		status, body, err := apiGet(t.Context(), tw.url, "/metrics", nil, nil)
		if err != nil || status != http.StatusOK {
			t.Fatal(err)
		}
		if !strings.Contains(string(body), "tidewatch_config_last_reload_successful 0") {
			t.Errorf("the refused SIGHUP reload is not reported as failed")
		}
	})
	t.Run("good reload applies every section", func(t *testing.T) {
		tw.writeRawConfig(config("tw_rule_new", "probe_new", scrapeJob("a", ea.addr)+scrapeJob("b", eb.addr)))
		resp, err := http.Post(tw.url+"/-/reload", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if body, _ := readAll(resp); resp.StatusCode != http.StatusOK {
			t.Fatalf("good reload: %d %s", resp.StatusCode, body)
		}
		waitTargetsUp(t, tw, "a", "b")
		poll(t, 20*time.Second, "new rule and probe running", func() error {
			if r, p := ruleNames(t, tw), probeJobs(t, tw); !slices.Equal(r, []string{"tw_rule_new"}) || !slices.Equal(p, []string{"probe_new"}) {
				return fmt.Errorf("rules %v, probes %v", r, p)
			}
			return nil
		})
	})
}

// TestEmptyWorkingDirStaysEmpty: Tidewatch started in an empty working
// directory, with its configuration and storage path elsewhere, scraping,
// evaluating rules, notifying and being stopped, leaves that directory
// empty: every file it writes is under its configured paths.
func TestEmptyWorkingDirStaysEmpty(t *testing.T) {
	t.Parallel()
	ex := newExporter(t, 0)
	tw := newTidewatch(t, scrapeJob("a", ex.addr), "")
	hook := newWebhook(t)
	rulesFile := filepath.Join(tw.dir, "alerts.yml")
	if err := os.WriteFile(rulesFile, []byte("groups:\n  - name: g\n    interval: 1s\n    rules:\n      - alert: AlwaysFiring\n        expr: vector(1)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(tw.configYAML(scrapeJob("a", ex.addr), ""), "scrape_configs:", fmt.Sprintf(`rule_files: [%q]
scrape_configs:`, rulesFile), 1) + fmt.Sprintf(`notifications:
  route: {receiver: hook, group_by: [alertname], group_wait: 0s, group_interval: 1s, repeat_interval: 1h}
  receivers:
    - name: hook
      webhook_configs: [{url: %q}]
`, hook.url)
	tw.writeRawConfig(cfg)
	cwd := t.TempDir()
	p := testinfra.Start(t, "tidewatch-cwd", []string{twBin, "serve", "--config", tw.config}, testinfra.WithDir(cwd))
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := p.WaitHTTP(ctx, tw.url+"/-/ready", nil); err != nil {
		t.Fatalf("not ready: %v\n%s", err, p.Tail(40))
	}
	hook.wait(t, 30*time.Second, "AlwaysFiring")
	// A silence is state the notifier persists too.
	status, _, err := apiPostJSON(t.Context(), tw.url+"/api/v2/silences", `{"matchers":[{"name":"alertname","value":"Nothing","isRegex":false}],"startsAt":"`+
		time.Now().UTC().Format(time.RFC3339)+`","endsAt":"`+time.Now().Add(time.Hour).UTC().Format(time.RFC3339)+`","createdBy":"test","comment":"c"}`)
	if err != nil || status != http.StatusOK {
		t.Fatalf("create silence: %d %v", status, err)
	}
	waitSamples(t, tw, `up{job="a"}`, 2, 20*time.Second)
	p.Stop()
	entries, err := os.ReadDir(cwd)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 0 {
		t.Errorf("Tidewatch wrote into its working directory: %v", names)
	}
	if _, err := os.Stat(filepath.Join(tw.dir, "data", "alerting")); err != nil {
		t.Errorf("the notifier's state is not under the storage path: %v", err)
	}
}

// alertHook records the alert names notified to it.
type alertHook struct {
	url   string
	names chan string
}

func newWebhook(t *testing.T) *alertHook {
	t.Helper()
	h := &alertHook{names: make(chan string, 100)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var msg struct {
			Alerts []struct {
				Labels map[string]string `json:"labels"`
			} `json:"alerts"`
		}
		if json.NewDecoder(r.Body).Decode(&msg) == nil {
			for _, a := range msg.Alerts {
				select {
				case h.names <- a.Labels["alertname"]:
				default:
				}
			}
		}
	}))
	t.Cleanup(srv.Close)
	h.url = srv.URL
	return h
}

func (h *alertHook) wait(t *testing.T, timeout time.Duration, name string) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case n := <-h.names:
			if n == name {
				return
			}
		case <-deadline:
			t.Fatalf("no %s notification within %s", name, timeout)
		}
	}
}

func apiPostJSON(ctx context.Context, u, body string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	b, err := readAll(resp)
	return resp.StatusCode, b, err
}

// TestCheckConfigFindsWhatTheCollectorRefuses: a scrape job whose CA file
// does not exist passes config loading but not the collector's Check; check
// config reports it, as serve and a reload would refuse it.
func TestCheckConfigFindsWhatTheCollectorRefuses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "tidewatch.yml")
	if err := os.WriteFile(file, []byte("scrape_configs:\n  - job_name: b\n    static_configs: [{targets: [\"127.0.0.1:1\"]}]\n    tls_config: {ca_file: missing-ca.pem}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code := runCmd(t, twBin, "check", "config", file)
	if code != 1 || !strings.Contains(out, file+`:2: scrape_configs[0]: scrape job "b"`) || !strings.Contains(out, "missing-ca.pem") {
		t.Errorf("check config with a missing CA file: exit %d\n%s", code, out)
	}
}
