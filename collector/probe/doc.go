// Package probe probes targets from the outside, as blackbox_exporter does,
// with no exporter to run: probe_configs beside scrape_configs, fed by the
// same service discovery and relabeling.
//
// # Configuration
//
// Each probe config is a job: job_name, interval, one blackbox_exporter
// module (prober http, tcp, dns, icmp or grpc, timeout, and that prober's
// options exactly as in blackbox.yml), static_configs or any
// <name>_sd_configs, and relabel_configs. A discovered target's labels go
// through relabeling as in Prometheus (job is set from job_name first);
// what is probed is __param_target when relabeling sets it (so relabeling
// written for blackbox_exporter works unchanged), else __address__; instance
// defaults to what is probed.
//
// # Results
//
// The probers are blackbox_exporter's own (github.com/prometheus/
// blackbox_exporter/prober), so every result is what blackbox_exporter
// would report: probe_success, probe_duration_seconds and the prober's
// series (probe_http_status_code, probe_ssl_earliest_cert_expiry,
// probe_dns_lookup_time_seconds, …), appended with the target's labels at the
// probe's start time. A series missing from one probe but present in the
// previous, and every series of a target that disappears, get a stale
// marker, as scrapes do.
//
// # Limits
//
// Each probe runs under its module's timeout (default: the shorter of 10 s
// and the interval). At most Options.Concurrency probes run at once; a probe
// that finds no free slot within its interval is skipped and counted in
// tidewatch_probes_skipped_total. A prober that ignored its timeout would be
// abandoned one second later, keeping its slot until it returns. So no probe
// can stall the collector.
//
// ICMP probes use unprivileged ICMP sockets where the kernel allows it
// (net.ipv4.ping_group_range) and raw sockets otherwise (CAP_NET_RAW); when
// neither is allowed the probe's error says so.
//
// # Lifecycle
//
// New starts nothing; ApplyConfig swaps jobs atomically (checked first, the
// old configuration stays on error); Run probes until its context ends.
// /api/v1/probes lists targets with their last result (Manager.Routes).
package probe
