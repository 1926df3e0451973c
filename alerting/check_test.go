package alerting

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/common/model"

	"github.com/tidewatch/tidewatch/store"
)

func TestCheckRuleFilesHostile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yml")
	// Anchors across rules, as promtool accepts.
	if err := os.WriteFile(good, []byte(`groups:
  - name: g
    rules:
      - alert: A
        expr: up == 0
        labels: &sev {severity: page}
      - alert: B
        expr: up == 2
        labels: *sev
`), 0o600); err != nil {
		t.Fatal(err)
	}
	link := func(name, target string) string {
		p := filepath.Join(dir, name)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	zero := link("zero.yml", "/dev/zero")
	loop := link("loop.yml", "loop.yml")
	sub := filepath.Join(dir, "sub.yml")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, file, want string
	}{
		{"good with anchors", good, ""},
		{"symlink to /dev/zero", zero, zero + ": not a regular file (a character device)"},
		{"symlink loop", loop, loop + ": too many levels of symbolic links"},
		{"directory", sub, sub + ": not a regular file (a directory)"},
		{"missing", filepath.Join(dir, "missing.yml"), filepath.Join(dir, "missing.yml") + ": no such file or directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			probs := CheckRuleFiles([]string{tc.file}, nil)
			if tc.want == "" {
				if len(probs) > 0 {
					t.Fatalf("CheckRuleFiles: %v", probs)
				}
				return
			}
			if len(probs) != 1 || probs[0].String() != tc.want {
				t.Fatalf("CheckRuleFiles = %q, want %q", probs.Error(), tc.want)
			}
			// The rules manager's loader refuses the file as well.
			_, errs := RuleLoader{Parser: store.NewParser()}.Load(tc.file, false, model.UTF8Validation)
			if len(errs) != 1 || !strings.Contains(errs[0].Error(), tc.file) {
				t.Fatalf("RuleLoader.Load = %v, want one error naming %s", errs, tc.file)
			}
		})
	}
}
