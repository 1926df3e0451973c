package process

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/discovery/targetgroup"

	"github.com/tidewatch/tidewatch/autoscaler/backend"
)

func needPython(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("python3 not found")
		}
		t.Skip("python3 not found")
	}
	return p
}

// waitFor polls f until it returns nil or 30 s pass.
func waitFor(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: %v", what, err)
}

func get(port int) error {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

func TestFleetOfRealProcesses(t *testing.T) {
	py := needPython(t)
	sd := filepath.Join(t.TempDir(), "sd", "local.json")
	b, err := NewWithOptions(Options{
		Name:           "local",
		Command:        []string{py, "-m", "http.server", "{{.Port}}", "--bind", "127.0.0.1"},
		Dir:            t.TempDir(),
		SDFile:         sd,
		RestartBackoff: 50 * time.Millisecond,
		StopTimeout:    5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	up := make(chan []*targetgroup.Group, 16)
	go b.Run(ctx, up)
	<-up // the initial, empty state

	target := backend.Target{Name: "web"}
	res, err := b.Scale(ctx, target, backend.Request{Desired: 3})
	if err != nil || res.Replicas != 3 {
		t.Fatalf("scale to 3: %+v, %v", res, err)
	}
	if n := len(b.Instances()); n != 3 {
		t.Fatalf("%d instances", n)
	}
	for _, in := range b.Instances() {
		waitFor(t, fmt.Sprintf("instance %d answers", in.Index), func() error { return get(in.Port) })
	}
	insts := b.Instances() // all have a PID now (never kill PID 0: that is our own group)
	for _, in := range insts {
		if in.PID <= 0 {
			t.Fatalf("instance %d has no pid", in.Index)
		}
	}
	if groups := <-up; len(groups) != 3 {
		t.Errorf("discoverer sent %d groups, want 3", len(groups))
	}

	// A crashed instance is restarted on the same port.
	victim := insts[1]
	if err := syscall.Kill(victim.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "restart", func() error {
		for _, in := range b.Instances() {
			if in.Index == 1 && in.Restarts == 1 && in.PID != victim.PID {
				return get(in.Port)
			}
		}
		return fmt.Errorf("not restarted: %+v", b.Instances())
	})

	// Scaling in stops the newest instances gracefully.
	res, err = b.Scale(ctx, target, backend.Request{Desired: 1})
	if err != nil || res.Replicas != 1 {
		t.Fatalf("scale to 1: %+v, %v", res, err)
	}
	if n, _ := b.Current(ctx, target); n != 1 {
		t.Errorf("current = %d", n)
	}
	for _, in := range insts[1:] {
		if err := syscall.Kill(in.PID, 0); err == nil && in.Index == 2 {
			t.Errorf("instance %d (pid %d) still alive", in.Index, in.PID)
		}
		if get(in.Port) == nil {
			t.Errorf("instance %d still answers on %d", in.Index, in.Port)
		}
	}
	var groups []struct {
		Targets []string          `json:"targets"`
		Labels  map[string]string `json:"labels"`
	}
	data, err := os.ReadFile(sd)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &groups); err != nil {
		t.Fatal(err)
	}
	if len(groups) != 1 || groups[0].Targets[0] != fmt.Sprintf("127.0.0.1:%d", insts[0].Port) || groups[0].Labels["autoscaler_target"] != "web" {
		t.Errorf("sd file = %s", data)
	}
	var last []*targetgroup.Group
	for len(up) > 0 {
		last = <-up
	}
	if last != nil {
		empty := 0
		for _, g := range last {
			if len(g.Targets) == 0 {
				empty++
			}
		}
		if empty != 2 {
			t.Errorf("discoverer did not clear the stopped instances: %d empty groups", empty)
		}
	}

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if get(insts[0].Port) == nil {
		t.Error("instance 0 answers after Close")
	}
}

func TestStopEscalatesToSIGKILL(t *testing.T) {
	b, err := NewWithOptions(Options{
		Name:        "stubborn",
		Command:     []string{"sh", "-c", `trap "" TERM; while true; do sleep 1; done`},
		StopTimeout: 200 * time.Millisecond,
		BasePort:    0,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	target := backend.Target{Name: "x"}
	if _, err := b.Scale(t.Context(), target, backend.Request{Desired: 1}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "started", func() error {
		if b.Instances()[0].PID == 0 {
			return fmt.Errorf("no pid yet")
		}
		return nil
	})
	pid := b.Instances()[0].PID
	if pid <= 0 {
		t.Fatal("no pid")
	}
	if _, err := b.Scale(t.Context(), target, backend.Request{Desired: 0}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("pid %d alive after scale to 0", pid)
	}
}
