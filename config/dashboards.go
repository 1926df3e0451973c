package config

import (
	"github.com/tidewatch/tidewatch/dashboards"
	"github.com/tidewatch/tidewatch/store"
)

// DashboardsInput is the part of the configuration the dashboards depend on.
func (c *Config) DashboardsInput() dashboards.Input {
	return dashboards.Input{
		Dashboards:         c.Dashboards,
		Policies:           c.Autoscaling.Policies,
		ClickHouseStore:    c.Storage.Type == store.TypeClickHouse,
		ClickHouseDatabase: c.Storage.ClickHouse.Database,
	}
}
