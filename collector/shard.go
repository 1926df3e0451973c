package collector

import (
	"fmt"

	promconfig "github.com/prometheus/prometheus/config"

	twdiscovery "github.com/tidewatch/tidewatch/collector/discovery"
)

// ApplyShardedConfig is ApplyConfig keeping only shard's share of every
// scrape config's targets: the shard's relabeling steps are appended to each
// job's relabel_configs (scrape_config_files included). With sharding off it
// is ApplyConfig.
func (c *Collector) ApplyShardedConfig(cfg *promconfig.Config, shard twdiscovery.Shard) error {
	sharded, err := ShardConfig(cfg, shard)
	if err != nil {
		return err
	}
	return c.ApplyConfig(sharded)
}

// ShardConfig returns a copy of cfg whose scrape configs (those of
// scrape_config_files read now and included) keep only shard's targets. cfg
// is not modified. With sharding off it returns cfg.
func ShardConfig(cfg *promconfig.Config, shard twdiscovery.Shard) (*promconfig.Config, error) {
	if !shard.Enabled() {
		return cfg, nil
	}
	scfgs, err := cfg.GetScrapeConfigs()
	if err != nil {
		return nil, fmt.Errorf("read scrape configs: %w", err)
	}
	out := *cfg
	out.ScrapeConfigFiles = nil
	out.ScrapeConfigs = make([]*promconfig.ScrapeConfig, len(scfgs))
	for i, sc := range scfgs {
		cp := *sc
		cp.RelabelConfigs = shard.Apply(sc.RelabelConfigs)
		out.ScrapeConfigs[i] = &cp
	}
	return &out, nil
}
