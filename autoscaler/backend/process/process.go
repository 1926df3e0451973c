// Package process scales local instances of a command: the backend for a
// single host and for the demo. Each target (by name) is a fleet of
// instances of the command, started with per-instance arguments from Go
// templates ({{.Port}}, {{.Index}}, {{.Name}}); instance i listens on the
// first free port from base_port up. Crashed instances are restarted with
// exponential backoff; extra instances are stopped gracefully (SIGTERM to
// the instance's process group, SIGKILL after stop_timeout).
//
// The instances are scrape targets: Targets returns them as target groups,
// Run implements Prometheus' discovery.Discoverer, and with sd_file set the
// groups are also written as a file_sd JSON file after every change, so a
// scrape config with file_sd_configs picks them up without any wiring.
package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/template"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/discovery"
	"github.com/prometheus/prometheus/discovery/targetgroup"

	"github.com/tidewatch/tidewatch/autoscaler/backend"
)

// Options configure a process backend.
type Options struct {
	// Name is the backend's name, used in target group sources.
	Name    string
	Command []string
	// BasePort is the first port handed out; 0 means any free port.
	BasePort int
	Dir      string
	Env      []string
	// StopTimeout is how long an instance has between SIGTERM and SIGKILL.
	StopTimeout time.Duration
	// RestartBackoff is the delay before the first restart of a crashed
	// instance; it doubles up to 30 s and resets after 10 s of running.
	RestartBackoff time.Duration
	// SDFile, when set, receives the instances as file_sd JSON.
	SDFile string
	// Labels are added to every target group.
	Labels model.LabelSet
	// Output receives the instances' stdout and stderr; nil discards them.
	Output io.Writer
	Logger *slog.Logger
}

// Backend runs fleets of local processes.
type Backend struct {
	o      Options
	logger *slog.Logger
	args   []*template.Template

	mtx    sync.Mutex
	fleets map[string][]*instance // by target name
	ports  map[int]bool
	subs   map[chan struct{}]bool
	closed bool
}

var (
	_ backend.Backend      = (*Backend)(nil)
	_ discovery.Discoverer = (*Backend)(nil)
)

// New parses the command templates; it starts nothing.
func NewWithOptions(o Options) (*Backend, error) {
	if len(o.Command) == 0 {
		return nil, errors.New("process: empty command")
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = 10 * time.Second
	}
	if o.RestartBackoff <= 0 {
		o.RestartBackoff = time.Second
	}
	if o.Output == nil {
		o.Output = io.Discard
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	b := &Backend{o: o, logger: o.Logger.With("backend", o.Name), fleets: map[string][]*instance{}, ports: map[int]bool{}, subs: map[chan struct{}]bool{}}
	for i, a := range o.Command {
		t, err := template.New(strconv.Itoa(i)).Option("missingkey=error").Parse(a)
		if err != nil {
			return nil, fmt.Errorf("parse command argument %d %q: %w", i, a, err)
		}
		b.args = append(b.args, t)
	}
	return b, nil
}

// Current returns how many instances the target's fleet has (running or
// being restarted).
func (b *Backend) Current(_ context.Context, t backend.Target) (int, error) {
	b.mtx.Lock()
	defer b.mtx.Unlock()
	return len(b.fleets[t.Name]), nil
}

// Scale starts or stops instances until the fleet has req.Desired. Extra
// instances are stopped gracefully, newest first; Scale returns when they
// have exited or ctx ends.
func (b *Backend) Scale(ctx context.Context, t backend.Target, req backend.Request) (backend.Result, error) {
	b.mtx.Lock()
	if b.closed {
		b.mtx.Unlock()
		return backend.Result{}, fmt.Errorf("scale %s to %d: backend closed", t.Name, req.Desired)
	}
	fleet := b.fleets[t.Name]
	var stopping []*instance
	var err error
	for len(fleet) < req.Desired {
		var inst *instance
		if inst, err = b.startLocked(t.Name, len(fleet)); err != nil {
			break
		}
		fleet = append(fleet, inst)
	}
	for len(fleet) > req.Desired {
		stopping = append(stopping, fleet[len(fleet)-1])
		fleet = fleet[:len(fleet)-1]
	}
	b.fleets[t.Name] = fleet
	n := len(fleet)
	b.mtx.Unlock()

	b.changed()
	for _, inst := range stopping {
		inst.stop()
	}
	for _, inst := range stopping {
		select {
		case <-inst.done:
		case <-ctx.Done():
			return backend.Result{Replicas: n}, fmt.Errorf("scale %s to %d: waiting for instances to stop: %w", t.Name, req.Desired, ctx.Err())
		}
	}
	b.mtx.Lock()
	for _, inst := range stopping {
		delete(b.ports, inst.port)
	}
	b.mtx.Unlock()
	if err != nil {
		return backend.Result{Replicas: n}, fmt.Errorf("scale %s to %d: %w", t.Name, req.Desired, err)
	}
	return backend.Result{Replicas: n, Message: fmt.Sprintf("%d instances", n)}, nil
}

// startLocked starts instance index of fleet name. b.mtx is held.
func (b *Backend) startLocked(name string, index int) (*instance, error) {
	port, err := b.portLocked()
	if err != nil {
		return nil, err
	}
	vars := struct {
		Port, Index int
		Name        string
	}{port, index, name}
	argv := make([]string, len(b.args))
	for i, t := range b.args {
		var s strings.Builder
		if err := t.Execute(&s, vars); err != nil {
			return nil, fmt.Errorf("render command argument %d: %w", i, err)
		}
		argv[i] = s.String()
	}
	b.ports[port] = true
	inst := &instance{b: b, fleet: name, index: index, port: port, argv: argv, stopc: make(chan struct{}), done: make(chan struct{})}
	go inst.supervise()
	return inst, nil
}

// portLocked returns the first port from BasePort that is neither handed
// out nor busy, or a free port from the kernel when BasePort is 0.
func (b *Backend) portLocked() (int, error) {
	if b.o.BasePort == 0 {
		for range 20 {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return 0, fmt.Errorf("pick a free port: %w", err)
			}
			p := l.Addr().(*net.TCPAddr).Port
			l.Close()
			if !b.ports[p] {
				return p, nil
			}
		}
		return 0, errors.New("pick a free port: none found")
	}
	for p := b.o.BasePort; p <= 65535; p++ {
		if b.ports[p] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue // in use by someone else
		}
		l.Close()
		return p, nil
	}
	return 0, fmt.Errorf("no free port from %d", b.o.BasePort)
}

// instance is one supervised process.
type instance struct {
	b           *Backend
	fleet       string
	index, port int
	argv        []string

	stopOnce sync.Once
	stopc    chan struct{}
	done     chan struct{}

	mtx      sync.Mutex
	pid      int
	restarts int
}

func (i *instance) stop() { i.stopOnce.Do(func() { close(i.stopc) }) }

// supervise runs the process until stop, restarting it when it exits.
func (i *instance) supervise() {
	defer close(i.done)
	o := i.b.o
	logger := i.b.logger.With("target", i.fleet, "instance", i.index, "port", i.port)
	backoff := o.RestartBackoff
	for {
		cmd := exec.Command(i.argv[0], i.argv[1:]...)
		cmd.Dir = o.Dir
		cmd.Env = append(os.Environ(), o.Env...)
		cmd.Env = append(cmd.Env, "PORT="+strconv.Itoa(i.port), "TIDEWATCH_INSTANCE="+strconv.Itoa(i.index))
		cmd.Stdout, cmd.Stderr = o.Output, o.Output
		// Own process group, so that stopping reaches the children; killed
		// with Tidewatch if it dies.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		started := time.Now()
		if err := cmd.Start(); err != nil {
			logger.Warn("start instance", "err", err)
		} else {
			i.mtx.Lock()
			i.pid = cmd.Process.Pid
			i.mtx.Unlock()
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			select {
			case err := <-exited:
				i.mtx.Lock()
				i.restarts++
				i.mtx.Unlock()
				logger.Warn("instance exited; restarting", "err", err, "backoff", backoff)
				if time.Since(started) > 10*time.Second {
					backoff = o.RestartBackoff
				}
			case <-i.stopc:
				pid := cmd.Process.Pid
				_ = syscall.Kill(-pid, syscall.SIGTERM)
				select {
				case <-exited:
				case <-time.After(o.StopTimeout):
					logger.Warn("instance did not stop in time; killing", "timeout", o.StopTimeout)
					_ = syscall.Kill(-pid, syscall.SIGKILL)
					<-exited
				}
				return
			}
		}
		select {
		case <-i.stopc:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// Instance describes a running instance.
type Instance struct {
	Target   string `json:"target"`
	Index    int    `json:"index"`
	Port     int    `json:"port"`
	PID      int    `json:"pid"`
	Restarts int    `json:"restarts"`
}

// Instances lists the instances of every fleet.
func (b *Backend) Instances() []Instance {
	b.mtx.Lock()
	defer b.mtx.Unlock()
	var out []Instance
	for _, name := range mapsKeys(b.fleets) {
		for _, inst := range b.fleets[name] {
			inst.mtx.Lock()
			out = append(out, Instance{Target: name, Index: inst.index, Port: inst.port, PID: inst.pid, Restarts: inst.restarts})
			inst.mtx.Unlock()
		}
	}
	return out
}

func mapsKeys(m map[string][]*instance) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// Targets returns one target group per instance (source
// "process/<backend>/<target>/<index>") with the labels autoscaler_target
// and instance_index, plus an empty group for every index a fleet had and no
// longer has, so that consumers drop stopped instances.
func (b *Backend) Targets() []*targetgroup.Group {
	b.mtx.Lock()
	defer b.mtx.Unlock()
	var out []*targetgroup.Group
	for _, name := range mapsKeys(b.fleets) {
		for _, inst := range b.fleets[name] {
			labels := model.LabelSet{"autoscaler_target": model.LabelValue(name), "instance_index": model.LabelValue(strconv.Itoa(inst.index))}
			for k, v := range b.o.Labels {
				labels[k] = v
			}
			out = append(out, &targetgroup.Group{
				Source:  fmt.Sprintf("process/%s/%s/%d", b.o.Name, name, inst.index),
				Targets: []model.LabelSet{{model.AddressLabel: model.LabelValue(net.JoinHostPort("127.0.0.1", strconv.Itoa(inst.port)))}},
				Labels:  labels,
			})
		}
	}
	return out
}

// Run sends the target groups on up at once and after every change until
// ctx ends. It implements discovery.Discoverer.
func (b *Backend) Run(ctx context.Context, up chan<- []*targetgroup.Group) {
	ch := make(chan struct{}, 1)
	b.mtx.Lock()
	b.subs[ch] = true
	b.mtx.Unlock()
	defer func() {
		b.mtx.Lock()
		delete(b.subs, ch)
		b.mtx.Unlock()
	}()
	sent := map[string]bool{}
	for {
		groups := b.Targets()
		now := map[string]bool{}
		for _, g := range groups {
			now[g.Source] = true
		}
		for src := range sent {
			if !now[src] {
				groups = append(groups, &targetgroup.Group{Source: src})
			}
		}
		sent = now
		select {
		case up <- groups:
		case <-ctx.Done():
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
}

// changed notifies the discoverers and rewrites the SD file.
func (b *Backend) changed() {
	b.mtx.Lock()
	for ch := range b.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	b.mtx.Unlock()
	if b.o.SDFile != "" {
		if err := b.writeSDFile(); err != nil {
			b.logger.Error("write sd file", "file", b.o.SDFile, "err", err)
		}
	}
}

// writeSDFile writes the groups as file_sd JSON, atomically.
func (b *Backend) writeSDFile() error {
	type fileGroup struct {
		Targets []string          `json:"targets"`
		Labels  map[string]string `json:"labels"`
	}
	out := []fileGroup{}
	for _, g := range b.Targets() {
		fg := fileGroup{Labels: map[string]string{}}
		for _, t := range g.Targets {
			fg.Targets = append(fg.Targets, string(t[model.AddressLabel]))
		}
		for k, v := range g.Labels {
			fg.Labels[string(k)] = string(v)
		}
		out = append(out, fg)
	}
	data, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(b.o.SDFile), 0o755); err != nil {
		return err
	}
	tmp := b.o.SDFile + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, b.o.SDFile)
}

// Close stops every instance gracefully and waits for them. It is safe to
// call more than once.
func (b *Backend) Close() error {
	b.mtx.Lock()
	if b.closed {
		b.mtx.Unlock()
		return nil
	}
	b.closed = true
	var all []*instance
	for name, fleet := range b.fleets {
		all = append(all, fleet...)
		b.fleets[name] = nil
	}
	b.mtx.Unlock()
	for _, inst := range all {
		inst.stop()
	}
	for _, inst := range all {
		<-inst.done
	}
	b.changed()
	return nil
}
