package main

// Regression tests for issue 10 point 6, configuration files under hostile
// input: YAML anchors across list items (as promtool accepts them), files
// that are symlinks to /dev/zero, and `check config` finding what serve finds.

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestHostileConfigAnchors: a prometheus.yml-style file with anchors on one
// scrape config used by the next, a merge key and an anchor used across
// sections passes `check config` and runs under serve as it means.
func TestHostileConfigAnchors(t *testing.T) {
	t.Parallel()
	ea, eb := newExporter(t, 0), newExporter(t, 1)
	tw := newTidewatch(t, "", "")
	tw.writeRawConfig(fmt.Sprintf(`global:
  scrape_interval: &interval 1s
  evaluation_interval: *interval
scrape_configs:
  - job_name: a
    static_configs:
      - targets: [%q]
    relabel_configs: &rl
      - target_label: env
        replacement: anchored
      - source_labels: [__address__]
        regex: "([^:]+):.*"
        target_label: host
    metric_relabel_configs: &mrl
      - source_labels: [__name__]
        regex: "go_.*"
        action: drop
  - &b
    job_name: b
    static_configs:
      - targets: [%q]
    relabel_configs: *rl
    metric_relabel_configs: *mrl
  - <<: *b
    job_name: b-merged
storage:
  type: embedded
  embedded:
    path: %s
query:
  timeout: &timeout 30s
web:
  listen_address: %s
`, ea.addr, eb.addr, filepath.Join(tw.dir, "data"), tw.addr))

	out, code := runCmd(t, twBin, "check", "config", tw.config)
	if code != 0 || !strings.Contains(out, tw.config+": OK") {
		t.Fatalf("check config on an anchored config: exit %d\n%s", code, out)
	}
	tw.start()
	waitTargetsUp(t, tw, "a", "b", "b-merged")
	for _, job := range []string{"a", "b", "b-merged"} {
		waitSamples(t, tw, fmt.Sprintf(`up{job=%q,env="anchored",host="127.0.0.1"}`, job), 1, 20*time.Second)
	}
}

// TestHostileConfigDevZero: a configuration or rule file that is a symlink
// to /dev/zero is refused at once by check and serve, and by /-/reload on a
// running instance, which keeps its configuration and its memory.
func TestHostileConfigDevZero(t *testing.T) {
	t.Parallel()
	ea := newExporter(t, 0)
	tw := newTidewatch(t, scrapeJob("a", ea.addr), "")
	zero := filepath.Join(tw.dir, "zero.yml")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	zeroRule := filepath.Join(tw.dir, "rules", "zero.yml")
	if err := os.MkdirAll(filepath.Dir(zeroRule), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/zero", zeroRule); err != nil {
		t.Fatal(err)
	}
	withZeroRules := filepath.Join(tw.dir, "zero-rules.yml")
	if err := os.WriteFile(withZeroRules, []byte(tw.configYAML(scrapeJob("a", ea.addr), "")+"rule_files: [rules/*.yml]\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("check config", func(t *testing.T) {
		out, code := runCmd(t, twBin, "check", "config", zero)
		if code != 1 || !strings.Contains(out, zero+": not a regular file (a character device)") {
			t.Errorf("check config on a symlink to /dev/zero: exit %d, want 1 naming it\n%s", code, out)
		}
		out, code = runCmd(t, twBin, "check", "config", withZeroRules)
		want := fmt.Sprintf("%s:%d: rule_files[0]: %s: not a regular file (a character device)", withZeroRules, problemLine(t, withZeroRules, "rule_files"), zeroRule)
		if code != 1 || !strings.Contains(out, want) {
			t.Errorf("check config with a rule file symlinked to /dev/zero: exit %d, want 1 and %q\n%s", code, want, out)
		}
	})
	t.Run("check rules", func(t *testing.T) {
		out, code := runCmd(t, twBin, "check", "rules", zeroRule)
		if code != 1 || !strings.Contains(out, zeroRule+": not a regular file") {
			t.Errorf("check rules on a symlink to /dev/zero: exit %d\n%s", code, out)
		}
	})
	t.Run("serve", func(t *testing.T) {
		for _, cfg := range []string{zero, withZeroRules} {
			out, code := runCmd(t, twBin, "serve", "--config", cfg)
			if code == 0 || !strings.Contains(out, "not a regular file") {
				t.Errorf("serve --config %s: exit %d, want a failure naming the file\n%s", cfg, code, out)
			}
		}
	})

	t.Run("reload", func(t *testing.T) {
		tw.start()
		waitTargetsUp(t, tw, "a")
		good, err := os.ReadFile(tw.config)
		if err != nil {
			t.Fatal(err)
		}
		// The config file itself, then a rule file, turn into /dev/zero.
		if err := os.Remove(tw.config); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("/dev/zero", tw.config); err != nil {
			t.Fatal(err)
		}
		reloadRefused(t, tw, tw.config+": not a regular file")
		if err := os.Remove(tw.config); err != nil {
			t.Fatal(err)
		}
		tw.writeRawConfig(string(good) + "rule_files: [rules/*.yml]\n")
		reloadRefused(t, tw, zeroRule+": not a regular file")

		// Still serving the old configuration, without having grown.
		waitSamples(t, tw, `up{job="a"}`, 3, 20*time.Second)
		status, body, err := apiGet(t.Context(), tw.url, "/api/v1/status/config", nil, nil)
		if err != nil || status != http.StatusOK || strings.Contains(string(body), "rules/") {
			t.Errorf("status/config after the refused reloads: %d %v, want the old config\n%s", status, err, body)
		}
		if hwm := peakRSS(t, tw.proc.PID); hwm > 1<<30 {
			t.Errorf("peak RSS after the refused reloads is %d bytes, want under 1 GiB", hwm)
		}
	})
}

// reloadRefused posts /-/reload and wants a 500 whose body contains want.
func reloadRefused(t *testing.T, tw *twInstance, want string) {
	t.Helper()
	resp, err := http.Post(tw.url+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := readAll(resp)
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(body, want) {
		t.Errorf("POST /-/reload: status %d, want 500 with %q; body %s", resp.StatusCode, want, body)
	}
}

// peakRSS is VmHWM of process pid, in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}

// TestHostileConfigCheckFindsWhatServeFinds: `check config` fails, naming
// the file, line and field, wherever serve fails at start on a file the
// configuration names.
func TestHostileConfigCheckFindsWhatServeFinds(t *testing.T) {
	t.Parallel()
	tw := newTidewatch(t, "", "")
	rulesDir := filepath.Join(tw.dir, "rules")
	if err := os.MkdirAll(filepath.Join(rulesDir, "sub.yml"), 0o755); err != nil { // a directory the glob matches
		t.Fatal(err)
	}
	loopDir := filepath.Join(tw.dir, "loop")
	if err := os.MkdirAll(loopDir, 0o755); err != nil {
		t.Fatal(err)
	}
	loop := filepath.Join(loopDir, "loop.yml")
	if err := os.Symlink("loop.yml", loop); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, extra, key, want string
	}{
		{"rule_files glob matching a directory", "rule_files: [rules/*.yml]\n", "rule_files",
			"rule_files[0]: " + filepath.Join(rulesDir, "sub.yml") + ": not a regular file (a directory)"},
		{"rule_files glob matching a symlink loop", "rule_files: [loop/*.yml]\n", "rule_files",
			"rule_files[0]: " + loop + ": too many levels of symbolic links"},
		{"missing bearer_token_file", "  bearer_token_file: missing-token\n", "bearer_token_file",
			"web.bearer_token_file: " + filepath.Join(tw.dir, "missing-token") + ": no such file or directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(tw.dir, strings.ReplaceAll(tc.name, " ", "-")+".yml")
			content := tw.configYAML("", "")
			if strings.HasPrefix(tc.extra, "  ") {
				content += tc.extra // web section comes last
			} else {
				content = tc.extra + content
			}
			if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf("%s:%d: %s", file, problemLine(t, file, tc.key), tc.want)
			out, code := runCmd(t, twBin, "check", "config", file)
			if code != 1 || !strings.Contains(out, want) {
				t.Errorf("check config: exit %d, want 1 and %q\n%s", code, want, out)
			}
			out, code = runCmd(t, twBin, "serve", "--config", file)
			if code == 0 {
				t.Errorf("serve accepted what check refuses:\n%s", out)
			}
		})
	}
}
