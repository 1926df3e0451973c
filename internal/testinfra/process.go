package testinfra

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// stopTimeout is how long Stop waits after SIGTERM before SIGKILL.
const stopTimeout = 10 * time.Second

// readyTimeout bounds how long the Start helpers wait for a peer to be ready.
const readyTimeout = 60 * time.Second

// logTailLines is how much of a process log a failed test prints.
const logTailLines = 40

// Process is a server started by Start, running in its own process group.
type Process struct {
	Name    string
	PID     int
	LogPath string

	cmd      *exec.Cmd
	done     chan struct{} // closed when the process has exited
	waitErr  error         // set before done is closed
	stopOnce sync.Once
}

// StartOption changes how Start runs a command.
type StartOption func(*exec.Cmd)

// WithDir runs the command in dir.
func WithDir(dir string) StartOption { return func(c *exec.Cmd) { c.Dir = dir } }

// WithEnv adds KEY=VALUE pairs to the command's environment.
func WithEnv(kv ...string) StartOption {
	return func(c *exec.Cmd) { c.Env = append(c.Environ(), kv...) }
}

// Start runs cmd (argv, cmd[0] an absolute path or a name in PATH) in its own
// process group with stdout and stderr in a log file under t.TempDir(). The
// process is stopped in t.Cleanup; when the test failed, the log tail is
// printed. A command that cannot be started fails or skips the test by the
// CI rule.
func Start(t testing.TB, name string, cmd []string, opts ...StartOption) *Process {
	t.Helper()
	if len(cmd) == 0 {
		t.Fatalf("start %s: empty command", name)
	}
	logPath := filepath.Join(t.TempDir(), name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatalf("create log for %s: %v", name, err)
	}
	defer logFile.Close() // the child has its own copy

	c := exec.Command(cmd[0], cmd[1:]...)
	c.Stdout = logFile
	c.Stderr = logFile
	// Own process group so Stop reaches children; SIGKILL if the test binary
	// dies without running its cleanups (e.g. a test timeout).
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	for _, o := range opts {
		o(c)
	}
	if err := c.Start(); err != nil {
		unavailable(t, "start %s: %v", name, err)
	}
	p := &Process{Name: name, PID: c.Process.Pid, LogPath: logPath, cmd: c, done: make(chan struct{})}
	go func() {
		p.waitErr = c.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("last %d lines of %s (pid %d, %s):\n%s", logTailLines, name, p.PID, logPath, p.Tail(logTailLines))
		}
	})
	return p
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err returns how the process ended (nil while it runs or if it exited 0).
func (p *Process) Err() error {
	select {
	case <-p.done:
		return p.waitErr
	default:
		return nil
	}
}

// Stop sends SIGTERM to the process group, waits up to 10 s for the process
// to exit, then sends SIGKILL. It is idempotent and safe to call after Kill.
func (p *Process) Stop() {
	p.stopOnce.Do(func() {
		_ = syscall.Kill(-p.PID, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(stopTimeout):
		}
		p.killGroup()
	})
}

// Kill sends SIGKILL to the process group at once and waits for the process
// to exit, as a crash would.
func (p *Process) Kill() {
	p.stopOnce.Do(p.killGroup)
}

func (p *Process) killGroup() {
	// Also reaches children left behind when the leader has exited.
	_ = syscall.Kill(-p.PID, syscall.SIGKILL)
	<-p.done
}

// Tail returns the last n lines of the process log.
func (p *Process) Tail(n int) string {
	b, err := os.ReadFile(p.LogPath)
	if err != nil {
		return fmt.Sprintf("(read log: %v)", err)
	}
	return tail(b, n)
}

var usedPorts struct {
	sync.Mutex
	m map[int]bool
}

// FreePort returns a free TCP port on 127.0.0.1, never the same one twice in
// one process.
func FreePort(t testing.TB) int {
	t.Helper()
	usedPorts.Lock()
	defer usedPorts.Unlock()
	if usedPorts.m == nil {
		usedPorts.m = make(map[int]bool)
	}
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("listen on a free port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !usedPorts.m[port] {
			usedPorts.m[port] = true
			return port
		}
	}
	t.Fatalf("no unused free port after 100 tries")
	return 0
}

// WaitHTTP polls url with GET until want accepts the response or ctx ends.
// A nil want accepts status 200. The error says what the last attempt got.
func WaitHTTP(ctx context.Context, url string, want func(status int, body []byte) bool) error {
	if want == nil {
		want = func(status int, _ []byte) bool { return status == http.StatusOK }
	}
	client := &http.Client{Timeout: 5 * time.Second}
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("wait for %s: %w", url, err)
		}
		resp, err := client.Do(req)
		if err == nil {
			body, rerr := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			switch {
			case rerr != nil:
				last = rerr
			case want(resp.StatusCode, body):
				return nil
			default:
				last = fmt.Errorf("status %d: %.200s", resp.StatusCode, body)
			}
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w (last attempt: %v)", url, ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// WaitHTTP polls url like the package-level WaitHTTP, and gives up as soon
// as p exits.
func (p *Process) WaitHTTP(ctx context.Context, url string, want func(status int, body []byte) bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-p.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	return WaitHTTP(ctx, url, want)
}

// waitReady waits for url like WaitHTTP, gives up early when p exits, and
// fails or skips the test by the CI rule when p does not become ready.
func waitReady(t testing.TB, p *Process, url string, want func(int, []byte) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), readyTimeout)
	defer cancel()
	start := time.Now()
	err := p.WaitHTTP(ctx, url, want)
	if err == nil {
		t.Logf("%s ready at %s in %s (pid %d)", p.Name, url, time.Since(start).Round(time.Millisecond), p.PID)
		return
	}
	select {
	case <-p.Done():
		err = errors.Join(err, fmt.Errorf("%s exited: %v", p.Name, p.Err()))
	default:
	}
	unavailable(t, "%s not ready: %v\nlast %d lines of %s:\n%s", p.Name, err, logTailLines, p.LogPath, p.Tail(logTailLines))
}
