package exec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/autoscaler/backend"
)

func TestScaleAndCurrent(t *testing.T) {
	state := filepath.Join(t.TempDir(), "replicas")
	b, err := NewWithOptions(Options{
		Command:        []string{"sh", "-c", `echo "$0 $1 $TIDEWATCH_DECISION_ID" > "$2.log"; echo {{.Desired}} > "$2"; echo scaled; cat "$2"`, "{{.Name}}", "{{.Desired}}", state},
		CurrentCommand: []string{"cat", state},
		Timeout:        10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	target := backend.Target{Name: "api"}
	if _, err := b.Current(t.Context(), target); err == nil {
		t.Error("current of a missing file: no error")
	}
	res, err := b.Scale(t.Context(), target, backend.Request{DecisionID: "d-7", Desired: 4, Current: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Replicas != 4 {
		t.Errorf("replicas = %d, want 4", res.Replicas)
	}
	log, _ := os.ReadFile(state + ".log")
	if got := strings.TrimSpace(string(log)); got != "api 4 d-7" {
		t.Errorf("command saw %q", got)
	}
	if n, err := b.Current(t.Context(), target); err != nil || n != 4 {
		t.Errorf("current = %d, %v", n, err)
	}
}

func TestFailureAndTimeout(t *testing.T) {
	tests := []struct {
		name string
		cmd  []string
		want string
	}{
		{"exit status", []string{"sh", "-c", "echo boom >&2; exit 3"}, "exit status 3: boom"},
		{"timeout", []string{"sleep", "30"}, "timed out"},
		{"bad template", []string{"echo", "{{.Nope}}"}, "render argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := NewWithOptions(Options{Command: tt.cmd, Timeout: 200 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			_, err = b.Scale(t.Context(), backend.Target{Name: "api"}, backend.Request{Desired: 2})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "scale api to 2: ") {
				t.Errorf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}
