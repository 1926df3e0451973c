// Package exec scales by running a command whose arguments are Go templates
// over the decision: {{.Desired}}, {{.Current}}, {{.Policy}}, {{.DecisionID}},
// {{.Name}}, {{.Namespace}}, {{.Kind}}, {{.Group}}, {{.Reason}}. It covers
// kubectl, lxc, cloud CLIs and scripts. The same values are in the
// environment as TIDEWATCH_DESIRED, TIDEWATCH_CURRENT, TIDEWATCH_POLICY,
// TIDEWATCH_DECISION_ID and TIDEWATCH_TARGET_NAME.
//
// Exit status 0 is success. When the last line of the output is an integer
// it is taken as the resulting replica count. An optional current command
// prints the current count.
package exec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"

	"github.com/tidewatch/tidewatch/autoscaler/backend"
)

// Options configure an exec backend.
type Options struct {
	Command        []string
	CurrentCommand []string
	Timeout        time.Duration
}

// Backend runs commands.
type Backend struct {
	timeout time.Duration
	command []*template.Template
	current []*template.Template
}

var _ backend.Backend = (*Backend)(nil)

// New parses the argument templates.
func NewWithOptions(o Options) (*Backend, error) {
	if len(o.Command) == 0 {
		return nil, errors.New("exec: empty command")
	}
	b := &Backend{timeout: o.Timeout}
	if b.timeout <= 0 {
		b.timeout = 30 * time.Second
	}
	var err error
	if b.command, err = parseArgs(o.Command); err != nil {
		return nil, err
	}
	if b.current, err = parseArgs(o.CurrentCommand); err != nil {
		return nil, err
	}
	return b, nil
}

func parseArgs(args []string) ([]*template.Template, error) {
	var ts []*template.Template
	for i, a := range args {
		t, err := template.New(strconv.Itoa(i)).Option("missingkey=error").Parse(a)
		if err != nil {
			return nil, fmt.Errorf("parse argument %d %q: %w", i, a, err)
		}
		ts = append(ts, t)
	}
	return ts, nil
}

// vars are the template's values.
type vars struct {
	Desired, Current                                         int
	Policy, DecisionID, Name, Namespace, Kind, Group, Reason string
}

func render(ts []*template.Template, v vars) ([]string, error) {
	out := make([]string, len(ts))
	for i, t := range ts {
		var b strings.Builder
		if err := t.Execute(&b, v); err != nil {
			return nil, fmt.Errorf("render argument %d: %w", i, err)
		}
		out[i] = b.String()
	}
	return out, nil
}

// Current runs the current command and parses its last line.
func (b *Backend) Current(ctx context.Context, t backend.Target) (int, error) {
	if len(b.current) == 0 {
		return 0, fmt.Errorf("exec %s: no current_command: %w", t.Name, backend.ErrUnknown)
	}
	v := vars{Name: t.Name, Namespace: t.Namespace, Kind: t.Kind, Group: t.Group}
	out, err := b.run(ctx, b.current, v)
	if err != nil {
		return 0, fmt.Errorf("read replicas of %s: %w", t.Name, err)
	}
	n, ok := lastInt(out)
	if !ok {
		return 0, fmt.Errorf("read replicas of %s: current_command printed no number: %q", t.Name, tail(out))
	}
	return n, nil
}

// Scale runs the command.
func (b *Backend) Scale(ctx context.Context, t backend.Target, req backend.Request) (backend.Result, error) {
	v := vars{Desired: req.Desired, Current: req.Current, Policy: req.Policy, DecisionID: req.DecisionID,
		Name: t.Name, Namespace: t.Namespace, Kind: t.Kind, Group: t.Group, Reason: req.Reason}
	out, err := b.run(ctx, b.command, v)
	if err != nil {
		return backend.Result{}, fmt.Errorf("scale %s to %d: %w", t.Name, req.Desired, err)
	}
	res := backend.Result{Replicas: -1, Message: tail(out)}
	if n, ok := lastInt(out); ok {
		res.Replicas = n
	}
	return res, nil
}

func (b *Backend) run(ctx context.Context, ts []*template.Template, v vars) ([]byte, error) {
	argv, err := render(ts, v)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	cmd := osexec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(),
		"TIDEWATCH_DESIRED="+strconv.Itoa(v.Desired), "TIDEWATCH_CURRENT="+strconv.Itoa(v.Current),
		"TIDEWATCH_POLICY="+v.Policy, "TIDEWATCH_DECISION_ID="+v.DecisionID, "TIDEWATCH_TARGET_NAME="+v.Name)
	// Own process group, so that a timeout kills the command's children too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err = cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return out.Bytes(), fmt.Errorf("%s timed out after %s", argv[0], b.timeout)
	}
	if err != nil {
		return out.Bytes(), fmt.Errorf("%s: %w: %s", argv[0], err, tail(out.Bytes()))
	}
	return out.Bytes(), nil
}

func lastInt(out []byte) (int, bool) {
	n, err := strconv.Atoi(tail(out))
	return n, err == nil
}

func tail(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
