// Package etcd discovers targets registered in etcd (etcd_sd_configs), which
// Prometheus lacks.
//
// Every key under the configured prefix holds one target group in the JSON
// form of file_sd, or a list of them:
//
//	{"targets": ["10.0.0.1:8080", "10.0.0.2:8080"], "labels": {"service": "api"}}
//	[{"targets": ["10.0.0.3:9100"]}, {"targets": ["10.0.0.4:9100"], "labels": {"az": "b"}}]
//
// Each group also gets the meta label __meta_etcd_key (the key it came from).
// The prefix is read once and then watched with the etcd v3 client: a Put or
// Delete reaches the discovery manager as soon as etcd sends the event, with
// no polling. When the watch breaks (etcd down, revision compacted) the prefix
// is read again with backoff and everything that changed in between is sent.
// A value that is not a valid group is logged, counted in
// prometheus_sd_etcd_invalid_values_total and contributes no targets.
package etcd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/discovery"
	"github.com/prometheus/prometheus/discovery/targetgroup"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tidewatch/tidewatch/internal/fileread"
)

// keyLabel is the meta label holding the etcd key a target group came from.
const keyLabel = model.MetaLabelPrefix + "etcd_key"

// Backoff between attempts to read the prefix after a failure.
const (
	minBackoff = 500 * time.Millisecond
	maxBackoff = 30 * time.Second
)

// DefaultSDConfig is the default etcd SD configuration.
var DefaultSDConfig = SDConfig{
	Prefix:      "/services/",
	DialTimeout: model.Duration(5 * time.Second),
}

// SDConfig is one entry of etcd_sd_configs.
type SDConfig struct {
	// Endpoints are the etcd client URLs (http://host:port or
	// https://host:port; a bare host:port means http).
	Endpoints []string `yaml:"endpoints"`
	// Prefix is the key prefix under which target groups are registered.
	Prefix string `yaml:"prefix"`
	// Username and Password (or PasswordFile) authenticate with etcd's auth.
	Username     string           `yaml:"username,omitempty"`
	Password     commoncfg.Secret `yaml:"password,omitempty"`
	PasswordFile string           `yaml:"password_file,omitempty"`
	// TLSConfig is used for https endpoints (client certificates, CA).
	TLSConfig commoncfg.TLSConfig `yaml:"tls_config,omitempty"`
	// DialTimeout bounds connecting and each read of the prefix.
	DialTimeout model.Duration `yaml:"dial_timeout,omitempty"`
}

var _ discovery.Config = (*SDConfig)(nil)

// Name returns the name of the mechanism: the key is etcd_sd_configs.
func (*SDConfig) Name() string { return "etcd" }

// SetDirectory resolves relative file paths against dir.
func (c *SDConfig) SetDirectory(dir string) {
	c.TLSConfig.SetDirectory(dir)
	c.PasswordFile = commoncfg.JoinDir(dir, c.PasswordFile)
}

// UnmarshalYAML applies defaults and validates the configuration.
func (c *SDConfig) UnmarshalYAML(unmarshal func(any) error) error {
	*c = DefaultSDConfig
	type plain SDConfig
	if err := unmarshal((*plain)(c)); err != nil {
		return err
	}
	return c.Validate()
}

// Validate checks the fields against each other.
func (c *SDConfig) Validate() error {
	var errs []error
	if len(c.Endpoints) == 0 {
		errs = append(errs, errors.New("etcd_sd_config: endpoints must not be empty"))
	}
	for _, e := range c.Endpoints {
		if _, err := endpointURL(e); err != nil {
			errs = append(errs, fmt.Errorf("etcd_sd_config: endpoint %q: %w", e, err))
		}
	}
	if c.Prefix == "" {
		errs = append(errs, errors.New("etcd_sd_config: prefix must not be empty"))
	}
	if c.Password != "" && c.PasswordFile != "" {
		errs = append(errs, errors.New("etcd_sd_config: at most one of password and password_file may be set"))
	}
	if (c.Password != "" || c.PasswordFile != "") && c.Username == "" {
		errs = append(errs, errors.New("etcd_sd_config: a password needs a username"))
	}
	if c.DialTimeout <= 0 {
		errs = append(errs, errors.New("etcd_sd_config: dial_timeout must be positive"))
	}
	if err := c.TLSConfig.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("etcd_sd_config: tls_config: %w", err))
	}
	return errors.Join(errs...)
}

func endpointURL(e string) (*url.URL, error) {
	if !strings.Contains(e, "://") {
		e = "http://" + e
	}
	u, err := url.Parse(e)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("scheme %q is neither http nor https", u.Scheme)
	}
	if u.Host == "" {
		return nil, errors.New("no host")
	}
	return u, nil
}

// NewDiscovererMetrics returns the mechanism's metrics.
func (*SDConfig) NewDiscovererMetrics(reg prometheus.Registerer, _ discovery.RefreshMetricsInstantiator) discovery.DiscovererMetrics {
	m := &metrics{
		watchRestarts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "prometheus_sd_etcd_watch_restarts_total",
			Help: "How many times an etcd watch broke and the prefix was read again.",
		}),
		invalidValues: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "prometheus_sd_etcd_invalid_values_total",
			Help: "Values under an etcd discovery prefix that are not target groups.",
		}),
	}
	m.reg = discovery.NewMetricRegisterer(reg, []prometheus.Collector{m.watchRestarts, m.invalidValues})
	return m
}

type metrics struct {
	reg           discovery.MetricRegisterer
	watchRestarts prometheus.Counter
	invalidValues prometheus.Counter
}

var _ discovery.DiscovererMetrics = (*metrics)(nil)

// Register registers the metrics.
func (m *metrics) Register() error { return m.reg.RegisterMetrics() }

// Unregister unregisters the metrics.
func (m *metrics) Unregister() { m.reg.UnregisterMetrics() }

// NewDiscoverer returns a discoverer for the configuration.
func (c *SDConfig) NewDiscoverer(o discovery.DiscovererOptions) (discovery.Discoverer, error) {
	m, ok := o.Metrics.(*metrics)
	if !ok {
		return nil, fmt.Errorf("etcd discovery: invalid discovery metrics type %T", o.Metrics)
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cc, err := c.clientConfig()
	if err != nil {
		return nil, err
	}
	return &Discovery{cfg: cc, prefix: c.Prefix, timeout: time.Duration(c.DialTimeout), logger: logger, metrics: m}, nil
}

func (c *SDConfig) clientConfig() (clientv3.Config, error) {
	cc := clientv3.Config{
		DialTimeout: time.Duration(c.DialTimeout),
		Username:    c.Username,
		Password:    string(c.Password),
		Logger:      zap.NewNop(),
		// Detect a dead connection while a watch is idle.
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: time.Duration(c.DialTimeout),
		PermitWithoutStream:  true,
	}
	if c.PasswordFile != "" {
		b, err := fileread.ReadFile(c.PasswordFile, fileread.SecretLimit)
		if err != nil {
			return cc, fmt.Errorf("etcd discovery: read password_file: %w", err)
		}
		cc.Password = strings.TrimSpace(string(b))
	}
	useTLS := c.TLSConfig.CAFile != "" || c.TLSConfig.CA != "" || c.TLSConfig.CertFile != "" || c.TLSConfig.Cert != ""
	for _, e := range c.Endpoints {
		u, err := endpointURL(e)
		if err != nil {
			return cc, fmt.Errorf("etcd discovery: endpoint %q: %w", e, err)
		}
		useTLS = useTLS || u.Scheme == "https"
		cc.Endpoints = append(cc.Endpoints, u.Host)
	}
	if useTLS {
		tc, err := commoncfg.NewTLSConfig(&c.TLSConfig)
		if err != nil {
			return cc, fmt.Errorf("etcd discovery: tls_config: %w", err)
		}
		cc.TLS = tc
	}
	return cc, nil
}

// Discovery watches one prefix of one etcd cluster.
type Discovery struct {
	cfg     clientv3.Config
	prefix  string
	timeout time.Duration
	logger  *slog.Logger
	metrics *metrics

	// sent is how many groups were last sent for each key, so that groups
	// that vanish are sent again empty (that is how a discoverer deletes).
	sent map[string]int
}

// Run reads and watches the prefix until ctx ends.
func (d *Discovery) Run(ctx context.Context, up chan<- []*targetgroup.Group) {
	d.sent = map[string]int{}
	cfg := d.cfg
	cfg.Context = ctx
	cli, err := clientv3.New(cfg)
	if err != nil {
		// clientv3.New fails only on bad configuration; dialing is lazy.
		d.logger.Error("create etcd client", "err", err)
		return
	}
	defer cli.Close()

	backoff := minBackoff
	for {
		rev, err := d.list(ctx, cli, up)
		if err == nil {
			backoff = minBackoff
			err = d.watch(ctx, cli, rev, up)
		}
		if ctx.Err() != nil {
			return
		}
		d.metrics.watchRestarts.Inc()
		d.logger.Warn("etcd discovery interrupted; reading the prefix again", "prefix", d.prefix, "retry_in", backoff, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// list reads every key under the prefix, sends the full state (and empty
// groups for keys that disappeared since the last state) and returns the
// revision to watch from.
func (d *Discovery) list(ctx context.Context, cli *clientv3.Client, up chan<- []*targetgroup.Group) (int64, error) {
	lctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), d.timeout)
	defer cancel()
	resp, err := cli.Get(lctx, d.prefix, clientv3.WithPrefix())
	if err != nil {
		return 0, fmt.Errorf("read prefix %s: %w", d.prefix, err)
	}
	seen := make(map[string]bool, len(resp.Kvs))
	var tgs []*targetgroup.Group
	for _, kv := range resp.Kvs {
		key := string(kv.Key)
		seen[key] = true
		tgs = append(tgs, d.update(key, kv.Value)...)
	}
	for key := range d.sent {
		if !seen[key] {
			tgs = append(tgs, d.update(key, nil)...)
		}
	}
	// The first state is sent even when empty: it is the full set.
	select {
	case up <- tgs:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return resp.Header.Revision, nil
}

// watch sends every change under the prefix after revision rev until the
// watch breaks or ctx ends.
func (d *Discovery) watch(ctx context.Context, cli *clientv3.Client, rev int64, up chan<- []*targetgroup.Group) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := cli.Watch(wctx, d.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case wr, ok := <-wch:
			if !ok {
				return errors.New("watch channel closed")
			}
			if err := wr.Err(); err != nil {
				return fmt.Errorf("watch prefix %s: %w", d.prefix, err)
			}
			var tgs []*targetgroup.Group
			for _, ev := range wr.Events {
				key := string(ev.Kv.Key)
				if ev.Type == clientv3.EventTypeDelete {
					tgs = append(tgs, d.update(key, nil)...)
					continue
				}
				tgs = append(tgs, d.update(key, ev.Kv.Value)...)
			}
			if !send(ctx, up, tgs) {
				return ctx.Err()
			}
		}
	}
}

// update returns the groups to send for key now holding value (nil: deleted).
func (d *Discovery) update(key string, value []byte) []*targetgroup.Group {
	var groups []*targetgroup.Group
	if value != nil {
		var err error
		if groups, err = parseGroups(value); err != nil {
			d.metrics.invalidValues.Inc()
			d.logger.Warn("etcd discovery: value is not a target group or a list of them; ignoring it", "key", key, "err", err)
			groups = nil
		}
	}
	for i, g := range groups {
		g.Source = source(key, i)
		if g.Labels == nil {
			g.Labels = model.LabelSet{}
		}
		g.Labels[keyLabel] = model.LabelValue(key)
	}
	n := len(groups)
	for i := n; i < d.sent[key]; i++ {
		groups = append(groups, &targetgroup.Group{Source: source(key, i)})
	}
	if n == 0 {
		delete(d.sent, key)
	} else {
		d.sent[key] = n
	}
	return groups
}

func source(key string, i int) string {
	if i == 0 {
		return "etcd:" + key
	}
	return "etcd:" + key + "#" + strconv.Itoa(i)
}

// parseGroups decodes a value: one group object or a list of them.
func parseGroups(value []byte) ([]*targetgroup.Group, error) {
	trimmed := strings.TrimSpace(string(value))
	if strings.HasPrefix(trimmed, "[") {
		var gs []*targetgroup.Group
		if err := json.Unmarshal(value, &gs); err != nil {
			return nil, err
		}
		for i, g := range gs {
			if g == nil {
				return nil, fmt.Errorf("group %d is null", i)
			}
		}
		return gs, nil
	}
	var g targetgroup.Group
	if err := json.Unmarshal(value, &g); err != nil {
		return nil, err
	}
	return []*targetgroup.Group{&g}, nil
}

func send(ctx context.Context, up chan<- []*targetgroup.Group, tgs []*targetgroup.Group) bool {
	if len(tgs) == 0 {
		return true
	}
	select {
	case up <- tgs:
		return true
	case <-ctx.Done():
		return false
	}
}
