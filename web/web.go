// Package web is Tidewatch's HTTP server: the Prometheus HTTP API v1 (so that
// Grafana's Prometheus data source and promtool work unchanged),
// self-monitoring, health and lifecycle endpoints. Receivers of pushed data
// (remote write and the dialects to come) live in collector/receive and mount
// their routes here through Options.Routes.
//
// The /api/v1 handlers are Prometheus' own (web/api/v1), mounted route by
// route into the gin router: that is the only way to guarantee identical JSON
// shapes, status codes and error bodies, and it is a well-kept library.
// Tidewatch's own endpoints are plain gin handlers beside them.
package web

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/gin-gonic/gin"
	remoteapi "github.com/prometheus/client_golang/exp/api/remote"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/route"
	promconfig "github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/template"
	"github.com/prometheus/prometheus/util/features"
	"github.com/prometheus/prometheus/util/notifications"
	apiv1 "github.com/prometheus/prometheus/web/api/v1"

	"github.com/tidewatch/tidewatch/internal/api"
	"github.com/tidewatch/tidewatch/internal/fileread"
	"github.com/tidewatch/tidewatch/internal/version"
	"github.com/tidewatch/tidewatch/store"
)

// Targets is what the API needs from the collector: the scrape manager's view.
type Targets interface {
	apiv1.TargetRetriever
	apiv1.ScrapePoolsRetriever
}

// Options are the server's dependencies.
type Options struct {
	Logger  *slog.Logger
	Config  Config
	Metrics *metrics.Set
	// Gatherer's metrics (the Prometheus libraries' own) are appended to /metrics.
	Gatherer   prometheus.Gatherer
	Registerer prometheus.Registerer

	Engine *promql.Engine
	// Query holds the limits the API applies before the engine runs a
	// query (length, depth, sample estimate); zero fields take
	// store.DefaultQueryConfig's values.
	Query store.QueryConfig
	// Queryable answers queries; it must also serve chunk queries (remote read).
	Queryable storage.SampleAndChunkQueryable
	// Exemplars is optional.
	Exemplars storage.ExemplarQueryable
	// TSDB is optional: when set, /api/v1/status/tsdb and friends are served.
	TSDB    apiv1.TSDBAdminStats
	Targets Targets

	// Rules and Alertmanagers serve /api/v1/rules, /api/v1/alerts and
	// /api/v1/alertmanagers; nil means none.
	Rules         apiv1.RulesRetriever
	Alertmanagers apiv1.AlertmanagerRetriever
	// Routes lets feature packages (receivers, alerting, autoscaler, probes) mount their
	// own endpoints; each is called once with the authenticated router group.
	Routes []func(r gin.IRouter)

	// PromConfig returns the Prometheus view of the running configuration.
	PromConfig    func() promconfig.Config
	Flags         map[string]string
	LookbackDelta time.Duration
	QueryTimeout  time.Duration
	// Reload reloads the configuration file (POST /-/reload).
	Reload func() error
	// ReloadStatus reports whether the last configuration load succeeded and
	// when the configuration last loaded successfully.
	ReloadStatus func() (ok bool, at time.Time)
	// Ready returns nil when Tidewatch can serve and store, else why not.
	Ready func() error
	// RetentionDescription is shown in runtime info.
	RetentionDescription string
}

// Server is the HTTP server. New starts nothing; Run listens.
type Server struct {
	o       Options
	query   store.QueryConfig // o.Query with defaults
	logger  *slog.Logger
	handler http.Handler
	token   atomic.Pointer[string] // bearer token; empty or nil: no auth
	started time.Time
}

// New builds the router.
func New(o Options) (*Server, error) {
	if o.Logger == nil || o.Metrics == nil || o.Engine == nil || o.Queryable == nil || o.Targets == nil {
		return nil, errors.New("web: logger, metrics, engine, queryable and targets are required")
	}
	if o.Ready == nil {
		o.Ready = func() error { return nil }
	}
	if o.ReloadStatus == nil {
		started := time.Now()
		o.ReloadStatus = func() (bool, time.Time) { return true, started }
	}
	if o.Rules == nil {
		o.Rules = noRules{}
	}
	if o.Alertmanagers == nil {
		o.Alertmanagers = noAlertmanagers{}
	}
	if o.PromConfig == nil {
		o.PromConfig = func() promconfig.Config { return promconfig.DefaultConfig }
	}
	s := &Server{o: o, query: o.Query.WithDefaults(), logger: o.Logger.With("component", "web"), started: time.Now()}
	if err := s.ApplyConfig(o.Config); err != nil {
		return nil, err
	}
	s.handler = s.router()
	return s, nil
}

// ApplyConfig re-reads the bearer token. The listen address and TLS files
// are read when Run starts; changing them needs a restart.
func (s *Server) ApplyConfig(c Config) error {
	tok, err := readToken(c)
	if err != nil {
		return err
	}
	s.token.Store(&tok)
	return nil
}

// CheckConfig reports whether ApplyConfig would accept c, without applying it.
func CheckConfig(c Config) error {
	_, err := readToken(c)
	return err
}

func readToken(c Config) (string, error) {
	if c.BearerTokenFile == "" {
		return "", nil
	}
	b, err := fileread.ReadFile(c.BearerTokenFile, fileread.SecretLimit)
	if err != nil {
		return "", fmt.Errorf("read web.bearer_token_file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("web.bearer_token_file %q is empty", c.BearerTokenFile)
	}
	return tok, nil
}

// Handler returns the root handler (for tests and embedding).
func (s *Server) Handler() http.Handler { return s.handler }

// Run listens on addr until ctx ends, then shuts down gracefully.
func (s *Server) Run(ctx context.Context, l net.Listener) error {
	read := time.Duration(s.o.Config.ReadTimeout)
	if read <= 0 {
		read = time.Duration(DefaultConfig.ReadTimeout)
	}
	srv := &http.Server{
		Handler: s.handler,
		// ReadTimeout bounds reading a whole request, body included, so a
		// client trickling its body cannot hold a connection forever.
		ReadTimeout:       read,
		ReadHeaderTimeout: min(read, 30*time.Second),
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() {
		tls := s.o.Config.TLSServerConfig
		if tls.CertFile != "" {
			errc <- srv.ServeTLS(l, tls.CertFile, tls.KeyFile)
		} else {
			errc <- srv.Serve(l)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shut down http server: %w", err)
	}
	return nil
}

// apiRoutes are the Prometheus API v1 endpoints Tidewatch serves, by method.
var apiRoutes = []struct{ method, path string }{
	{"GET", "/query"}, {"POST", "/query"},
	{"GET", "/query_range"}, {"POST", "/query_range"},
	{"GET", "/format_query"}, {"POST", "/format_query"},
	{"GET", "/parse_query"}, {"POST", "/parse_query"},
	{"GET", "/series"}, {"POST", "/series"}, {"DELETE", "/series"},
	{"GET", "/labels"}, {"POST", "/labels"},
	{"GET", "/label/:name/values"},
	{"GET", "/metadata"},
	{"GET", "/targets"},
	{"GET", "/targets/metadata"},
	{"GET", "/targets/relabel_steps"},
	{"GET", "/scrape_pools"},
	{"GET", "/status/buildinfo"},
	{"GET", "/status/runtimeinfo"},
	{"GET", "/status/config"},
	{"GET", "/status/flags"},
	{"GET", "/features"},
	{"GET", "/rules"},
	{"GET", "/alerts"},
	{"GET", "/alertmanagers"},
	{"POST", "/read"},
}

var exemplarRoutes = []struct{ method, path string }{
	{"GET", "/query_exemplars"}, {"POST", "/query_exemplars"},
}

var tsdbRoutes = []struct{ method, path string }{
	{"GET", "/status/tsdb"}, {"GET", "/status/tsdb/blocks"}, {"GET", "/status/walreplay"},
}

func (s *Server) router() http.Handler {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(gin.Recovery(), s.instrument())
	r.ContextWithFallback = true

	r.GET("/-/healthy", func(c *gin.Context) { c.String(http.StatusOK, "Tidewatch is Healthy.\n") })
	r.HEAD("/-/healthy", func(c *gin.Context) { c.Status(http.StatusOK) })
	r.GET("/-/ready", s.readyHandler)
	r.HEAD("/-/ready", s.readyHandler)

	authed := r.Group("/", s.auth)
	authed.POST("/-/reload", s.reloadHandler)
	authed.PUT("/-/reload", s.reloadHandler)
	authed.GET("/metrics", s.metricsHandler)

	prom := s.promAPI()
	apiRouter := route.New().WithPrefix("/api/v1")
	prom.Register(apiRouter)
	h := gin.WrapH(apiRouter)
	limits, formatLimits := s.queryLimits(false), s.queryLimits(true)
	mount := func(rs []struct{ method, path string }) {
		for _, rt := range rs {
			l := limits
			if rt.path == "/format_query" {
				l = formatLimits
			}
			authed.Handle(rt.method, "/api/v1"+rt.path, l, h)
		}
	}
	mount(apiRoutes)
	if s.o.Exemplars != nil {
		mount(exemplarRoutes)
	}
	if s.o.TSDB != nil {
		mount(tsdbRoutes)
	}
	for _, mount := range s.o.Routes {
		mount(authed)
	}
	r.NoRoute(func(c *gin.Context) {
		c.String(http.StatusNotFound, "404 page not found")
	})
	return r
}

func (s *Server) promAPI() *apiv1.API {
	bi := version.Get()
	o := s.o
	var eq storage.ExemplarQueryable = o.Exemplars
	tsdb := o.TSDB
	ext, err := ExternalURL(o.Config)
	if err != nil {
		s.logger.Warn("web.external_url is not a URL; using the default", "err", err)
	}
	return apiv1.NewAPI(
		store.NewLimitedEngine(o.Engine, s.query),
		o.Queryable,
		nil, // no appendable: remote write is collector/receive's
		eq,
		func(context.Context) apiv1.ScrapePoolsRetriever { return o.Targets },
		func(context.Context) apiv1.TargetRetriever { return o.Targets },
		func(context.Context) apiv1.AlertmanagerRetriever { return o.Alertmanagers },
		o.PromConfig,
		o.Flags,
		apiv1.GlobalURLOptions{ListenAddress: o.Config.ListenAddress, Host: ext.Host, Scheme: ext.Scheme},
		s.readyWrap,
		tsdb,
		"",    // dbDir: only for snapshots, which need the admin API
		false, // admin API off
		false, // search API off
		0,
		s.logger,
		func(context.Context) apiv1.RulesRetriever { return o.Rules },
		50_000_000, // remote read sample limit
		10,         // remote read concurrency
		1<<20,      // remote read max bytes in frame
		false,      // not an agent
		nil,        // no CORS
		s.runtimeInfo,
		&apiv1.PrometheusVersion{Version: bi.Version, Revision: bi.Revision, Branch: bi.Branch, BuildUser: bi.BuildUser, BuildDate: bi.BuildDate, GoVersion: bi.GoVersion},
		func() []notifications.Notification { return nil },
		func() (<-chan notifications.Notification, func(), bool) { return nil, func() {}, false },
		o.Gatherer,
		o.Registerer,
		nil,
		false, // remote-write receiver: collector/receive mounts its own
		remoteapi.MessageTypes{remoteapi.WriteV1MessageType, remoteapi.WriteV2MessageType},
		false, false, false, // no OTLP yet
		o.LookbackDelta,
		false, // type-and-unit labels
		false, // append metadata
		nil,
		s.features(),
		apiv1.OpenAPIOptions{},
		store.NewParser(),
		false, // query cost estimation
		o.QueryTimeout,
	)
}

// features is what /api/v1/features reports: what this server has, in
// Prometheus' categories and names.
func (s *Server) features() features.Collector {
	r := features.NewRegistry()
	store.RegisterQueryFeatures(r, s.query)
	r.Enable(features.Prometheus, "server_mode")
	r.Disable(features.Prometheus, "agent_mode")
	r.Disable(features.Prometheus, "auto_reload_config")
	r.Set(features.API, "lifecycle", s.o.Reload != nil)
	r.Disable(features.API, "admin")
	r.Enable(features.API, "remote_write_receiver")
	r.Disable(features.API, "otlp_write_receiver")
	r.Disable(features.API, "query_cost")
	r.Disable(features.API, "search")
	for _, f := range []string{"label_values_match", "query_warnings", "query_stats", "time_range_series", "time_range_labels", "exclude_alerts"} {
		r.Enable(features.API, f)
	}
	// Alerting and recording rules run in Prometheus' rule manager, with its
	// templates.
	r.Enable(features.Rules, "query_offset")
	r.Enable(features.Rules, "keep_firing_for")
	r.Disable(features.Rules, "concurrent_rule_eval")
	template.RegisterFeatures(r)
	return r
}

func (s *Server) runtimeInfo() (apiv1.RuntimeInfo, error) {
	cwd, _ := os.Getwd()
	host, _ := os.Hostname()
	reloadOK, lastConfig := s.o.ReloadStatus()
	return apiv1.RuntimeInfo{
		StartTime:           s.started,
		CWD:                 cwd,
		Hostname:            host,
		ServerTime:          time.Now().UTC(),
		ReloadConfigSuccess: reloadOK,
		LastConfigTime:      lastConfig,
		GoroutineCount:      runtime.NumGoroutine(),
		GOMAXPROCS:          runtime.GOMAXPROCS(0),
		GOGC:                os.Getenv("GOGC"),
		GODEBUG:             os.Getenv("GODEBUG"),
		StorageRetention:    s.o.RetentionDescription,
	}, nil
}

// readyWrap answers 503 while Tidewatch is not ready, as Prometheus does.
func (s *Server) readyWrap(f http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.o.Ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "Service Unavailable: %v\n", err)
			return
		}
		f(w, r)
	}
}

func (s *Server) readyHandler(c *gin.Context) {
	if err := s.o.Ready(); err != nil {
		c.String(http.StatusServiceUnavailable, "Service Unavailable: %v\n", err)
		return
	}
	c.String(http.StatusOK, "Tidewatch is Ready.\n")
}

func (s *Server) reloadHandler(c *gin.Context) {
	if s.o.Reload == nil {
		c.String(http.StatusNotImplemented, "reload is not available\n")
		return
	}
	if err := s.o.Reload(); err != nil {
		c.String(http.StatusInternalServerError, "failed to reload config: %v\n", err)
		return
	}
	c.Status(http.StatusOK)
}

func (s *Server) metricsHandler(c *gin.Context) {
	c.Header("Content-Type", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	w := c.Writer
	s.o.Metrics.WritePrometheus(w)
	metrics.WriteProcessMetrics(w)
	if s.o.Gatherer == nil {
		return
	}
	mfs, err := s.o.Gatherer.Gather()
	if err != nil {
		s.logger.Warn("gather library metrics", "err", err)
	}
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			s.logger.Warn("encode library metrics", "err", err)
			return
		}
	}
}

// auth requires the configured bearer token.
func (s *Server) auth(c *gin.Context) {
	tok := s.token.Load()
	if tok == nil || *tok == "" {
		return
	}
	got, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(*tok)) != 1 {
		c.Header("WWW-Authenticate", `Bearer realm="tidewatch"`)
		api.Fail(c, http.StatusUnauthorized, api.ErrUnauthorized, "missing or invalid bearer token")
		return
	}
}

// instrument counts requests by route and status code and times them.
func (s *Server) instrument() gin.HandlerFunc {
	set := s.o.Metrics
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		code := c.Writer.Status()
		set.GetOrCreateCounter(fmt.Sprintf(`tidewatch_http_requests_total{handler=%q,code="%d"}`, route, code)).Inc()
		set.GetOrCreatePrometheusHistogram(fmt.Sprintf(`tidewatch_http_request_duration_seconds{handler=%q}`, route)).UpdateDuration(start)
		switch route {
		case "/api/v1/query":
			set.GetOrCreatePrometheusHistogram(`tidewatch_query_duration_seconds{kind="instant"}`).UpdateDuration(start)
		case "/api/v1/query_range":
			set.GetOrCreatePrometheusHistogram(`tidewatch_query_duration_seconds{kind="range"}`).UpdateDuration(start)
		}
	}
}

// noAlertmanagers serves an empty list while no Alertmanager is configured.
type noAlertmanagers struct{}

func (noAlertmanagers) Alertmanagers() []*url.URL        { return nil }
func (noAlertmanagers) DroppedAlertmanagers() []*url.URL { return nil }
