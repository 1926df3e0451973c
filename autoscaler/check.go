package autoscaler

import (
	"errors"
	"fmt"
	"reflect"
)

// Check reports, without lasting side effects, whether c would apply: it
// validates, builds every policy, and builds every backend whose
// configuration changed (building one starts nothing; each is closed again
// at once), so that ApplyConfig cannot fail on what Check passed.
func (m *Manager) Check(c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	m.mtx.Lock()
	closed := m.closed
	var changed []BackendConfig
	for _, bc := range c.Backends {
		if old, ok := m.backends[bc.Name]; !ok || !reflect.DeepEqual(old.cfg, bc) {
			changed = append(changed, bc)
		}
	}
	m.mtx.Unlock()
	if closed {
		return errors.New("autoscaler: closed")
	}
	var errs []error
	for _, bc := range changed {
		b, err := m.o.NewBackend(bc, m.logger)
		if err != nil {
			errs = append(errs, fmt.Errorf("autoscaling.backends %s: %w", bc.Name, err))
			continue
		}
		closeBackend(b)
	}
	for _, pc := range c.Policies {
		if _, err := NewPolicy(pc); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
