// Package discovery makes every service discovery mechanism Tidewatch
// supports known to Prometheus' discovery registry, and holds the helpers
// that scrapes and probes share: sharding of targets between collectors.
//
// Prometheus' own mechanisms (file, DNS, Consul, Kubernetes, Nomad,
// ZooKeeper serverset and nerve, Docker and Docker Swarm) register
// themselves when their packages are imported, which this package does.
// Only these are imported, never discovery/install, which pulls in every
// cloud SDK. Tidewatch's own mechanisms (etcd) are registered explicitly by
// Register, which configuration loading calls before it parses anything.
package discovery

import (
	"sync"

	promdiscovery "github.com/prometheus/prometheus/discovery"
	_ "github.com/prometheus/prometheus/discovery/consul"     // consul_sd_configs
	_ "github.com/prometheus/prometheus/discovery/dns"        // dns_sd_configs
	_ "github.com/prometheus/prometheus/discovery/file"       // file_sd_configs
	_ "github.com/prometheus/prometheus/discovery/kubernetes" // kubernetes_sd_configs
	_ "github.com/prometheus/prometheus/discovery/moby"       // docker_sd_configs, dockerswarm_sd_configs
	_ "github.com/prometheus/prometheus/discovery/nomad"      // nomad_sd_configs
	_ "github.com/prometheus/prometheus/discovery/zookeeper"  // serverset_sd_configs, nerve_sd_configs

	"github.com/tidewatch/tidewatch/collector/discovery/etcd"
)

var registerOnce sync.Once

// Register adds Tidewatch's own service discovery mechanisms (etcd_sd_configs)
// to Prometheus' discovery registry. It is idempotent and safe for concurrent
// use. It must run before any configuration holding discovery configs is
// parsed (Prometheus caches the decoding types) and before the discovery
// metrics are created, so config and collector.New call it.
func Register() {
	registerOnce.Do(func() {
		promdiscovery.RegisterConfig(&etcd.SDConfig{})
	})
}
