package lifecycle

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// cfg is a configuration with one section per component.
type cfg map[string]string

// journal records what components did, in order.
type journal struct {
	mtx sync.Mutex
	log []string
}

func (j *journal) add(s string) {
	j.mtx.Lock()
	defer j.mtx.Unlock()
	j.log = append(j.log, s)
}

func (j *journal) get() []string {
	j.mtx.Lock()
	defer j.mtx.Unlock()
	return slices.Clone(j.log)
}

// comp is a component whose section "bad" fails Check and whose Run can be
// told to fail.
type comp struct {
	name    string
	j       *journal
	applied string
	runErr  chan error
}

func newComp(name string, j *journal) *comp {
	return &comp{name: name, j: j, runErr: make(chan error, 1)}
}

func (c *comp) Name() string { return c.name }
func (c *comp) Check(x cfg) error {
	if x[c.name] == "bad" {
		return errors.New("bad section")
	}
	return nil
}
func (c *comp) Apply(x cfg) error { c.applied = x[c.name]; c.j.add("apply " + c.name); return nil }
func (c *comp) Run(ctx context.Context) error {
	select {
	case <-ctx.Done():
		c.j.add("stop " + c.name)
		return nil
	case err := <-c.runErr:
		c.j.add("fail " + c.name)
		return err
	}
}
func (c *comp) Close() error { c.j.add("close " + c.name); return nil }

func group(j *journal, names ...string) (*Group[cfg], []*comp) {
	var comps []Component[cfg]
	var cs []*comp
	for _, n := range names {
		c := newComp(n, j)
		cs = append(cs, c)
		comps = append(comps, c)
	}
	return New(slog.New(slog.DiscardHandler), comps), cs
}

func TestReloadAllOrNothing(t *testing.T) {
	j := &journal{}
	g, cs := group(j, "store", "web", "collector", "autoscaler")
	if err := g.Start(cfg{"store": "1", "web": "1", "collector": "1", "autoscaler": "1"}); err != nil {
		t.Fatal(err)
	}
	// Bad in its last section: nobody applies anything.
	err := g.Reload(cfg{"store": "2", "web": "2", "collector": "2", "autoscaler": "bad"})
	if err == nil || !strings.Contains(err.Error(), "autoscaler: bad section") {
		t.Fatalf("reload bad in its last section: %v", err)
	}
	for _, c := range cs {
		if c.applied != "1" {
			t.Errorf("%s runs section %q after a refused reload, want the old one", c.name, c.applied)
		}
	}
	// Every failing section is named.
	err = g.Reload(cfg{"store": "bad", "web": "2", "collector": "bad", "autoscaler": "2"})
	if err == nil || !strings.Contains(err.Error(), "store:") || !strings.Contains(err.Error(), "collector:") {
		t.Errorf("reload bad in two sections: %v, want both named", err)
	}
	if err := g.Reload(cfg{"store": "3", "web": "3", "collector": "3", "autoscaler": "3"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.applied != "3" {
			t.Errorf("%s runs section %q after a good reload, want 3", c.name, c.applied)
		}
	}
}

func TestStartFailureClosesInReverse(t *testing.T) {
	j := &journal{}
	g, _ := group(j, "a", "b", "c")
	if err := g.Start(cfg{"c": "bad"}); err == nil {
		t.Fatal("Start with a bad section succeeded")
	}
	if got, want := j.get(), []string{"close c", "close b", "close a"}; !slices.Equal(got, want) {
		t.Errorf("journal %v, want %v (nothing applied, everything closed in reverse)", got, want)
	}
	// Close again is a no-op.
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(j.get()); n != 3 {
		t.Errorf("second Close closed again: %v", j.get())
	}
}

func TestRunStopsInReverseOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := &journal{}
		g, _ := group(j, "a", "b", "c")
		if err := g.Start(cfg{}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		var readiness []bool
		go func() { done <- g.Run(ctx, func(r bool) { readiness = append(readiness, r) }) }()
		synctest.Wait()
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
		want := []string{"apply a", "apply b", "apply c", "stop c", "close c", "stop b", "close b", "stop a", "close a"}
		if got := j.get(); !slices.Equal(got, want) {
			t.Errorf("journal %v, want %v", got, want)
		}
		if !slices.Equal(readiness, []bool{true, false}) {
			t.Errorf("readiness %v, want [true false]", readiness)
		}
	})
}

// TestRunWatchesEveryComponent: any component stopping, with an error or
// without, stops the group with that component named.
func TestRunWatchesEveryComponent(t *testing.T) {
	for _, failing := range []string{"a", "b", "c"} {
		for _, runErr := range []error{errors.New("boom"), nil} {
			synctest.Test(t, func(t *testing.T) {
				j := &journal{}
				g, cs := group(j, "a", "b", "c")
				if err := g.Start(cfg{}); err != nil {
					t.Fatal(err)
				}
				done := make(chan error, 1)
				go func() { done <- g.Run(t.Context(), nil) }()
				synctest.Wait()
				for _, c := range cs {
					if c.name == failing {
						c.runErr <- runErr
					}
				}
				err := <-done
				if err == nil || !strings.HasPrefix(err.Error(), failing+":") {
					t.Fatalf("%s stopping (%v): Run returned %v, want an error naming it", failing, runErr, err)
				}
				if runErr == nil && !strings.Contains(err.Error(), "unexpectedly") {
					t.Errorf("a component returning nil early: %v", err)
				}
				closes := 0
				for _, e := range j.get() {
					if strings.HasPrefix(e, "close ") {
						closes++
					}
				}
				if closes != 3 {
					t.Errorf("journal %v: want every component closed", j.get())
				}
			})
		}
	}
}

// TestGate: a gated component runs only while the gate lets it.
func TestGate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := &journal{}
		leader := make(chan bool)
		gate := func(ctx context.Context, name string, run func(context.Context) error) error {
			var cancel context.CancelFunc = func() {}
			var runDone chan error
			for {
				select {
				case <-ctx.Done():
					cancel()
					if runDone != nil {
						<-runDone
					}
					return nil
				case lead := <-leader:
					if lead && runDone == nil {
						var rctx context.Context
						rctx, cancel = context.WithCancel(ctx)
						runDone = make(chan error, 1)
						go func() { runDone <- run(rctx) }()
					} else if !lead && runDone != nil {
						cancel()
						<-runDone
						runDone = nil
					}
				}
			}
		}
		a, s := newComp("collector", j), newComp("autoscaler", j)
		g := New(slog.New(slog.DiscardHandler), []Component[cfg]{a, s}, WithGate(gate, "autoscaler"))
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- g.Run(ctx, nil) }()
		synctest.Wait()
		leader <- true
		time.Sleep(time.Second)
		leader <- false
		synctest.Wait()
		if got := j.get(); !slices.Contains(got, "stop autoscaler") || slices.Contains(got, "stop collector") {
			t.Errorf("journal %v: the gated component stops on lost leadership, the others run on", got)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}
