// Package ui is Tidewatch's built-in status UI: server-rendered HTML pages
// for scrape targets, probes, alerts, rules, the autoscaler, capacity
// analysis and ad-hoc PromQL queries. Templates and the stylesheet are
// embedded with go:embed; charts are inline SVG drawn on the server, so
// there is no front-end build step and the pages work without JavaScript.
package ui

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/scrape"
	"github.com/prometheus/prometheus/storage"
	apiv1 "github.com/prometheus/prometheus/web/api/v1"

	"github.com/tidewatch/tidewatch/autoscaler"
	"github.com/tidewatch/tidewatch/autoscaler/analysis"
	"github.com/tidewatch/tidewatch/collector/probe"
)

//go:embed templates/*.html templates/style.css
var files embed.FS

// Targets is what the targets page needs from the scrape manager.
type Targets interface {
	TargetsActive() map[string][]*scrape.Target
}

// Probes is what the probes page needs from the probe manager.
type Probes interface {
	Targets() ([]probe.ActiveTarget, []probe.DroppedTarget)
}

// Autoscaler is what the autoscaler page needs from the autoscaler manager.
type Autoscaler interface {
	Policies() []autoscaler.PolicyStatus
	Decisions(policy string, limit int) []autoscaler.Decision
}

// Analysis is what the analysis page needs from capacity analytics.
type Analysis interface {
	Span(from, to string) (time.Time, time.Time, error)
	Analyze(ctx context.Context, from, to time.Time) (*analysis.Report, error)
}

var (
	_ Probes     = (*probe.Manager)(nil)
	_ Autoscaler = (*autoscaler.Manager)(nil)
	_ Analysis   = (*analysis.Service)(nil)
)

// Options are the UI's data sources. Engine and Queryable are required;
// a nil source shows an empty page.
type Options struct {
	Logger     *slog.Logger
	Engine     promql.QueryEngine
	Queryable  storage.Queryable
	Targets    Targets
	Probes     Probes
	Rules      apiv1.RulesRetriever
	Autoscaler Autoscaler
	Analysis   Analysis
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// UI renders the status pages.
type UI struct {
	o      Options
	logger *slog.Logger
	pages  map[string]*template.Template
}

// Pages are the UI's paths, in navigation order.
var Pages = []string{"/graph", "/targets", "/probes", "/alerts", "/rules", "/autoscaler", "/analysis"}

// New parses the templates; it starts nothing.
func New(o Options) (*UI, error) {
	if o.Engine == nil || o.Queryable == nil {
		return nil, errors.New("ui: engine and queryable are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	u := &UI{o: o, logger: o.Logger.With("component", "ui"), pages: map[string]*template.Template{}}
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(files, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("parse layout: %w", err)
	}
	for _, p := range []string{"graph", "targets", "probes", "alerts", "rules", "autoscaler", "analysis"} {
		t, err := template.Must(base.Clone()).ParseFS(files, "templates/"+p+".html")
		if err != nil {
			return nil, fmt.Errorf("parse %s page: %w", p, err)
		}
		u.pages[p] = t
	}
	return u, nil
}

// Routes mounts the pages on r (web.Options.Routes).
func (u *UI) Routes(r gin.IRouter) {
	r.GET("/", func(c *gin.Context) { c.Redirect(http.StatusFound, "/graph") })
	r.GET("/graph", u.graph)
	r.GET("/targets", u.targets)
	r.GET("/probes", u.probes)
	r.GET("/alerts", u.alerts)
	r.GET("/rules", u.rules)
	r.GET("/autoscaler", u.autoscaler)
	r.GET("/analysis", u.analysis)
	r.GET("/ui/style.css", func(c *gin.Context) {
		b, _ := files.ReadFile("templates/style.css")
		c.Header("Cache-Control", "max-age=300")
		c.Data(http.StatusOK, "text/css; charset=utf-8", b)
	})
}

// page is what every template gets.
type page struct {
	Title string
	Path  string
	Pages []string
	Now   time.Time
	Data  any
}

func (u *UI) render(c *gin.Context, name, title string, data any) {
	var buf bytes.Buffer
	p := page{Title: title, Path: c.Request.URL.Path, Pages: Pages, Now: u.o.Now(), Data: data}
	if err := u.pages[name].ExecuteTemplate(&buf, "layout.html", p); err != nil {
		u.logger.Error("render page", "page", name, "err", err)
		c.String(http.StatusInternalServerError, "render %s: %v", name, err)
		return
	}
	c.Data(http.StatusOK, "text/html; charset=utf-8", buf.Bytes())
}

var funcs = template.FuncMap{
	"ago": func(now, t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return now.Sub(t).Round(time.Millisecond).String() + " ago"
	},
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"secs": func(s float64) string {
		return (time.Duration(s * float64(time.Second))).Round(time.Microsecond).String()
	},
	"dur": func(d time.Duration) string { return d.Round(time.Microsecond).String() },
	"num": func(f float64) string { return fmtNum(f) },
	"numptr": func(f *float64) string {
		if f == nil {
			return "—"
		}
		return fmtNum(*f)
	},
	"navname": func(p string) string { return p[1:] },
}
