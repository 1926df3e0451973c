package discovery

import (
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/relabel"
)

// ShardLabel is the temporary label the sharding step writes the target's
// shard number into; like every "__tmp" label it never reaches a series.
const ShardLabel = model.LabelName("__tmp_tidewatch_shard")

// Shard selects one collector's share of the targets, so that several
// collectors can split a fleet: with Count N, a target belongs to shard
// hash(__address__) mod N, the hash being relabeling's hashmod (MD5), which is
// stable across restarts, versions and machines. Count 0 or 1 means one
// collector takes every target.
type Shard struct {
	Count int `yaml:"count"`
	Index int `yaml:"index"`
}

// Enabled reports whether targets are split between several collectors.
func (s Shard) Enabled() bool { return s.Count > 1 }

// Validate checks the fields; path is where the shard sits in the file
// (collector.shard), for messages.
func (s Shard) Validate(path string) error {
	var errs []error
	if s.Count < 0 {
		errs = append(errs, fmt.Errorf("%s.count: must not be negative, got %d", path, s.Count))
	}
	switch {
	case s.Index < 0:
		errs = append(errs, fmt.Errorf("%s.index: must not be negative, got %d", path, s.Index))
	case s.Count <= 1 && s.Index != 0:
		errs = append(errs, fmt.Errorf("%s.index: must be 0 without sharding (count %d), got %d", path, s.Count, s.Index))
	case s.Count > 1 && s.Index >= s.Count:
		errs = append(errs, fmt.Errorf("%s.index: must be below count (%d), got %d", path, s.Count, s.Index))
	}
	return errors.Join(errs...)
}

// RelabelConfigs returns the relabeling steps that keep only this shard's
// targets: hashmod of __address__ into ShardLabel, then keep the shard's
// number. They go after a job's own relabel_configs, so the hash is over the
// address actually scraped or probed. Nil when sharding is off.
func (s Shard) RelabelConfigs() []*relabel.Config {
	return s.RelabelConfigsOn(model.AddressLabel)
}

// RelabelConfigsOn is RelabelConfigs hashing the value of label instead of
// __address__.
func (s Shard) RelabelConfigsOn(label model.LabelName) []*relabel.Config {
	if !s.Enabled() {
		return nil
	}
	return []*relabel.Config{
		{
			SourceLabels:         model.LabelNames{label},
			Separator:            relabel.DefaultRelabelConfig.Separator,
			Regex:                relabel.DefaultRelabelConfig.Regex,
			Modulus:              uint64(s.Count),
			TargetLabel:          string(ShardLabel),
			Replacement:          relabel.DefaultRelabelConfig.Replacement,
			Action:               relabel.HashMod,
			NameValidationScheme: model.UTF8Validation,
		},
		{
			SourceLabels:         model.LabelNames{ShardLabel},
			Separator:            relabel.DefaultRelabelConfig.Separator,
			Regex:                relabel.MustNewRegexp(strconv.Itoa(s.Index)),
			Replacement:          relabel.DefaultRelabelConfig.Replacement,
			Action:               relabel.Keep,
			NameValidationScheme: model.UTF8Validation,
		},
	}
}

// Apply returns rcs followed by the shard's steps (a new slice; rcs is not
// modified).
func (s Shard) Apply(rcs []*relabel.Config) []*relabel.Config {
	return appendSteps(rcs, s.RelabelConfigs())
}

// ProbeTargetLabel is the temporary label holding what a probe target
// probes (__param_target when set, else __address__), which probe sharding
// hashes: relabeling written for blackbox_exporter points every target's
// __address__ at the exporter, so hashing __address__ would put them all in
// one shard.
const ProbeTargetLabel = model.LabelName("__tmp_tidewatch_probe_target")

// ApplyProbe returns rcs followed by the shard's steps for probe targets:
// copy __address__, then a non-empty __param_target, to ProbeTargetLabel,
// and keep the shard's share by the hash of that.
func (s Shard) ApplyProbe(rcs []*relabel.Config) []*relabel.Config {
	if !s.Enabled() {
		return rcs
	}
	steps := []*relabel.Config{
		copyStep(model.AddressLabel, ProbeTargetLabel),
		copyStep(model.ParamLabelPrefix+"target", ProbeTargetLabel),
	}
	return appendSteps(rcs, append(steps, s.RelabelConfigsOn(ProbeTargetLabel)...))
}

// copyStep copies a non-empty value of from to to.
func copyStep(from, to model.LabelName) *relabel.Config {
	return &relabel.Config{
		SourceLabels:         model.LabelNames{from},
		Separator:            relabel.DefaultRelabelConfig.Separator,
		Regex:                relabel.MustNewRegexp("(.+)"),
		TargetLabel:          string(to),
		Replacement:          "$1",
		Action:               relabel.Replace,
		NameValidationScheme: model.UTF8Validation,
	}
}

func appendSteps(rcs, steps []*relabel.Config) []*relabel.Config {
	if steps == nil {
		return rcs
	}
	return append(slices.Clip(rcs), steps...)
}
