package config

import (
	"github.com/tidewatch/tidewatch/autoscaler/analysis"
)

// AnalysisInput is the part of the configuration capacity analytics
// depends on: the analysis section, the policies and the scraped jobs.
func (c *Config) AnalysisInput() analysis.Input {
	in := analysis.Input{Analysis: c.Analysis, Policies: c.Autoscaling.Policies}
	scs := c.ScrapeConfigs
	if c.Prom != nil {
		if all, err := c.Prom.GetScrapeConfigs(); err == nil {
			scs = all
		}
	}
	for _, sc := range scs {
		in.Jobs = append(in.Jobs, sc.JobName)
	}
	return in
}
