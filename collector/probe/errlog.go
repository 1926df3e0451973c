package probe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
)

// errorRecorder is the slog handler given to a prober. blackbox_exporter's
// probers report why a probe failed only through their logger, so the last
// error-level record is kept as the probe's error; every record is also
// passed on to the collector's logger at debug level (a failing target must
// not flood the log).
type errorRecorder struct {
	next  slog.Handler
	attrs []slog.Attr
	state *recorded
}

type recorded struct {
	mtx  sync.Mutex
	last string
}

func newErrorRecorder(next slog.Handler) *errorRecorder {
	return &errorRecorder{next: next, state: &recorded{}}
}

func (h *errorRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (h *errorRecorder) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		var b strings.Builder
		b.WriteString(r.Message)
		sep := " ("
		add := func(a slog.Attr) bool {
			fmt.Fprintf(&b, "%s%s=%v", sep, a.Key, a.Value.Resolve())
			sep = ", "
			return true
		}
		for _, a := range h.attrs {
			add(a)
		}
		r.Attrs(add)
		if sep == ", " {
			b.WriteString(")")
		}
		h.state.mtx.Lock()
		h.state.last = b.String()
		h.state.mtx.Unlock()
	}
	if !h.next.Enabled(ctx, slog.LevelDebug) {
		return nil
	}
	d := slog.NewRecord(r.Time, slog.LevelDebug, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool { d.AddAttrs(a); return true })
	return h.next.Handle(ctx, d)
}

func (h *errorRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &errorRecorder{next: h.next.WithAttrs(as), attrs: append(h.attrs[:len(h.attrs):len(h.attrs)], as...), state: h.state}
}

func (h *errorRecorder) WithGroup(name string) slog.Handler {
	return &errorRecorder{next: h.next.WithGroup(name), attrs: h.attrs, state: h.state}
}

// lastError returns the last error the prober logged, "" when none.
func (h *errorRecorder) lastError() string {
	h.state.mtx.Lock()
	defer h.state.mtx.Unlock()
	return h.state.last
}

// errICMPNotPermitted explains an ICMP probe that could open neither kind of socket.
var errICMPNotPermitted = errors.New("icmp: this process may open neither an unprivileged ICMP socket " +
	"(its group must be in the sysctl net.ipv4.ping_group_range) nor a raw one (it needs CAP_NET_RAW)")

// icmpHint returns errICMPNotPermitted with the current settings when msg
// says an ICMP socket could not be opened for lack of permission.
func icmpHint(msg string) error {
	if !strings.Contains(msg, "socket") || !(strings.Contains(msg, "not permitted") || strings.Contains(msg, "permission denied")) {
		return nil
	}
	rng, err := os.ReadFile("/proc/sys/net/ipv4/ping_group_range")
	if err != nil {
		return fmt.Errorf("%w (gid %d)", errICMPNotPermitted, os.Getgid())
	}
	return fmt.Errorf("%w (gid %d, ping_group_range %q)", errICMPNotPermitted, os.Getgid(), strings.Join(strings.Fields(string(rng)), " "))
}
