// Package lifecycle runs Tidewatch's components as one service: it starts
// them in order and cleans up in reverse order when a start fails, watches
// every component's Run (any one stopping stops them all, with its error),
// reloads the configuration in two phases (every component checks it, and
// none applies it unless all pass), and offers the hook where a leader gate
// starts and stops the components only one replica may run.
//
// The model is Alertmanager's app lifecycle and dskit's services, reduced to
// what Tidewatch needs: components are few, known at start, and share one
// configuration type.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
)

// Component is one running part of Tidewatch, configured by C.
type Component[C any] interface {
	// Name names the component in errors and logs.
	Name() string
	// Check reports whether cfg can be applied, with no side effect.
	Check(cfg C) error
	// Apply installs cfg, which Check has passed. It cannot fail for a
	// reason Check could have found; what remains (a file changed between
	// the two calls) it returns, and the group logs it.
	Apply(cfg C) error
	// Run runs the component until ctx ends. Returning before that (with an
	// error or not) stops the whole group.
	Run(ctx context.Context) error
	// Close releases the component. It is called once Run has returned, or
	// without Run when the group never ran; it must be idempotent.
	Close() error
}

// Gate decides when a component that only one replica may run (the
// autoscaler, say) runs: it calls run while this replica leads, cancelling
// run's context when leadership is lost, and returns when ctx ends. Without
// a gate (one replica) such components run like any other.
type Gate func(ctx context.Context, name string, run func(context.Context) error) error

// Group is the ordered set of components of one process.
type Group[C any] struct {
	logger *slog.Logger
	comps  []Component[C]
	gated  map[string]bool
	gate   Gate

	reload sync.Mutex // serialises Start and Reload
	close  sync.Once
	closeE error
}

// Option configures a Group.
type Option func(*options)

type options struct {
	gated []string
	gate  Gate
}

// WithGate runs the named components through gate.
func WithGate(gate Gate, names ...string) Option {
	return func(o *options) { o.gate, o.gated = gate, append(o.gated, names...) }
}

// New returns a group of comps, in start order; they stop in reverse order.
func New[C any](logger *slog.Logger, comps []Component[C], opts ...Option) *Group[C] {
	var o options
	for _, f := range opts {
		f(&o)
	}
	g := &Group[C]{logger: logger, comps: comps, gated: map[string]bool{}, gate: o.gate}
	for _, n := range o.gated {
		g.gated[n] = true
	}
	return g
}

// Start checks cfg with every component, then applies it to each in order.
// On any failure it closes every component, in reverse order, and returns
// the error: a failed start leaves nothing behind.
func (g *Group[C]) Start(cfg C) error {
	g.reload.Lock()
	defer g.reload.Unlock()
	if err := g.checkAll(cfg); err != nil {
		return errors.Join(err, g.Close())
	}
	for _, c := range g.comps {
		if err := c.Apply(cfg); err != nil {
			return errors.Join(fmt.Errorf("%s: %w", c.Name(), err), g.Close())
		}
	}
	return nil
}

// Reload is the two-phase reload: every component checks cfg, and only when
// all pass does each apply it, in start order. On a failed check nothing
// changes and the error names every failing component.
func (g *Group[C]) Reload(cfg C) error {
	g.reload.Lock()
	defer g.reload.Unlock()
	if err := g.checkAll(cfg); err != nil {
		return err
	}
	var errs []error
	for _, c := range g.comps {
		if err := c.Apply(cfg); err != nil {
			// Only an environment change since Check gets here.
			g.logger.Error("applying a checked configuration failed", "component", c.Name(), "err", err)
			errs = append(errs, fmt.Errorf("%s: %w", c.Name(), err))
		}
	}
	return errors.Join(errs...)
}

func (g *Group[C]) checkAll(cfg C) error {
	var errs []error
	for _, c := range g.comps {
		if err := c.Check(cfg); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.Name(), err))
		}
	}
	return errors.Join(errs...)
}

// Run runs every component until ctx ends or one of them stops, then stops
// them in reverse start order (each one's Run returns before the one
// started before it is stopped) and closes them likewise. ready, when set,
// is called with true once every component runs and with false when
// stopping begins. Run returns the first component error, if any.
func (g *Group[C]) Run(ctx context.Context, ready func(bool)) error {
	type running struct {
		cancel context.CancelFunc
		done   chan error
	}
	stopped := make(chan int, len(g.comps))
	rs := make([]running, len(g.comps))
	for i, c := range g.comps {
		cctx, cancel := context.WithCancel(context.Background())
		rs[i] = running{cancel: cancel, done: make(chan error, 1)}
		run := c.Run
		if g.gated[c.Name()] && g.gate != nil {
			run = func(ctx context.Context) error { return g.gate(ctx, c.Name(), c.Run) }
		}
		go func() {
			rs[i].done <- run(cctx)
			stopped <- i
		}()
	}
	if ready != nil {
		ready(true)
	}
	var runErr error
	select {
	case <-ctx.Done():
	case i := <-stopped:
		err := <-rs[i].done
		if err == nil {
			err = errors.New("stopped unexpectedly")
		}
		runErr = fmt.Errorf("%s: %w", g.comps[i].Name(), err)
		rs[i].done <- nil
	}
	if ready != nil {
		ready(false)
	}
	for i := len(g.comps) - 1; i >= 0; i-- {
		rs[i].cancel()
		if err := <-rs[i].done; err != nil && !errors.Is(err, context.Canceled) && runErr == nil {
			runErr = fmt.Errorf("%s: %w", g.comps[i].Name(), err)
		}
		if err := g.comps[i].Close(); err != nil {
			runErr = errors.Join(runErr, fmt.Errorf("close %s: %w", g.comps[i].Name(), err))
		}
	}
	return runErr
}

// Close closes every component in reverse start order; further calls return
// the first call's result. Run closes the components itself; Close is for a
// group that does not run (a failed start, a command that only checks).
func (g *Group[C]) Close() error {
	g.close.Do(func() {
		var errs []error
		for i := len(g.comps) - 1; i >= 0; i-- {
			if err := g.comps[i].Close(); err != nil {
				errs = append(errs, fmt.Errorf("close %s: %w", g.comps[i].Name(), err))
			}
		}
		g.closeE = errors.Join(errs...)
	})
	return g.closeE
}

// Func is a Component made of functions; nil ones do nothing (a nil Run
// waits for its context).
type Func[C any] struct {
	ID        string
	CheckFunc func(C) error
	ApplyFunc func(C) error
	RunFunc   func(context.Context) error
	CloseFunc func() error

	once   sync.Once
	closed error
}

// Name implements Component.
func (f *Func[C]) Name() string { return f.ID }

// Check implements Component.
func (f *Func[C]) Check(cfg C) error {
	if f.CheckFunc == nil {
		return nil
	}
	return f.CheckFunc(cfg)
}

// Apply implements Component.
func (f *Func[C]) Apply(cfg C) error {
	if f.ApplyFunc == nil {
		return nil
	}
	return f.ApplyFunc(cfg)
}

// Run implements Component.
func (f *Func[C]) Run(ctx context.Context) error {
	if f.RunFunc == nil {
		<-ctx.Done()
		return nil
	}
	return f.RunFunc(ctx)
}

// Close implements Component; CloseFunc runs once.
func (f *Func[C]) Close() error {
	f.once.Do(func() {
		if f.CloseFunc != nil {
			f.closed = f.CloseFunc()
		}
	})
	return f.closed
}
