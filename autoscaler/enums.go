package autoscaler

import (
	"fmt"
	"slices"
	"strings"
)

// The configuration's enumerations, their values, and their checks (the
// one place each is validated, with the message users see).

// BackendType is autoscaling.backends[].type: a key of the registry
// (registry.go).
type BackendType string

// ForecastMethod is forecast.method.
type ForecastMethod string

// Forecast methods.
const (
	ForecastHoltWinters ForecastMethod = "holt_winters"
	ForecastLinear      ForecastMethod = "linear"
)

// Select is behavior.<direction>.select: which rate policy wins, as in the HPA.
type Select string

// Select values.
const (
	SelectMax      Select = "max"
	SelectMin      Select = "min"
	SelectDisabled Select = "disabled"
)

// RateType is behavior.<direction>.policies[].type, as in the HPA.
type RateType string

// Rate policy types.
const (
	RatePercent RateType = "percent"
	RatePods    RateType = "pods"
)

func (t BackendType) check() error {
	if _, ok := backendTypes[t]; ok {
		return nil
	}
	known := make([]string, 0, len(backendTypes))
	for k := range backendTypes {
		known = append(known, string(k))
	}
	slices.Sort(known)
	return fmt.Errorf("unknown backend type %q (known: %s)", t, strings.Join(known, ", "))
}

func (m ForecastMethod) check() error {
	if m == ForecastHoltWinters || m == ForecastLinear {
		return nil
	}
	return fmt.Errorf("%q is neither %s nor %s", m, ForecastHoltWinters, ForecastLinear)
}

func (s Select) check() error {
	if s == SelectMax || s == SelectMin || s == SelectDisabled {
		return nil
	}
	return fmt.Errorf("%q is not max, min or disabled", s)
}

func (t RateType) check() error {
	if t == RatePercent || t == RatePods {
		return nil
	}
	return fmt.Errorf("%q is neither percent nor pods", t)
}
