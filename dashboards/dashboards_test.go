package dashboards

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	yaml "go.yaml.in/yaml/v3"

	"github.com/tidewatch/tidewatch/autoscaler"
	"github.com/tidewatch/tidewatch/store"
)

// testVars are the values a test gives Grafana's template variables.
var testVars = map[string]string{
	"datasource":      "tidewatch",
	"job":             ".+",
	"instance":        ".+",
	"__rate_interval": "1m",
	"__interval":      "15s",
	"policy":          "api",
}

func fullInput() Input {
	return Input{
		Dashboards: Config{ClickHouseDatasource: "ch-uid"},
		Policies: []autoscaler.PolicyConfig{
			{Name: "api", Target: autoscaler.TargetConfig{Backend: "hook", Name: "api"}, Min: 1, Max: 10,
				Metrics:  []autoscaler.MetricConfig{{Query: "vector(10)", PerInstance: 2}, {Query: "vector(0.5)", Utilization: 0.7}},
				Forecast: &autoscaler.ForecastConfig{Method: autoscaler.ForecastLinear, Window: model.Duration(time.Minute), Horizon: model.Duration(time.Minute)}},
			{Name: "worker", Target: autoscaler.TargetConfig{Backend: "hook", Name: "worker"}, Min: 2, Max: 4,
				Metrics: []autoscaler.MetricConfig{{Query: "vector(1)", Utilization: 0.5}}},
		},
		ClickHouseStore:    true,
		ClickHouseDatabase: "tw",
	}
}

func TestGenerateDeterministic(t *testing.T) {
	a, err := Generate(fullInput())
	if err != nil {
		t.Fatal(err)
	}
	b, err := Generate(fullInput())
	if err != nil {
		t.Fatal(err)
	}
	wantUIDs := []string{UIDFleet, UIDService, UIDAutoscaling, UIDAlerts, UIDTidewatch}
	if len(a) != len(wantUIDs) {
		t.Fatalf("%d dashboards, want %d", len(a), len(wantUIDs))
	}
	for i := range a {
		if a[i].UID != wantUIDs[i] {
			t.Errorf("dashboard %d uid %q, want %q", i, a[i].UID, wantUIDs[i])
		}
		if !bytes.Equal(a[i].JSON, b[i].JSON) {
			t.Errorf("dashboard %s differs between two generations", a[i].UID)
		}
		var m struct {
			UID        string `json:"uid"`
			Templating struct {
				List []struct{ Name, Type string } `json:"list"`
			} `json:"templating"`
			Panels []struct {
				ID *int `json:"id"`
			} `json:"panels"`
		}
		if err := json.Unmarshal(a[i].JSON, &m); err != nil {
			t.Fatalf("%s: %v", a[i].UID, err)
		}
		var vars []string
		for _, v := range m.Templating.List {
			vars = append(vars, v.Name+":"+v.Type)
		}
		if got := strings.Join(vars, ","); got != "datasource:datasource,job:query,instance:query" {
			t.Errorf("%s variables = %s", a[i].UID, got)
		}
		seen := map[int]bool{}
		for _, p := range m.Panels {
			if p.ID == nil || seen[*p.ID] {
				t.Errorf("%s: panel id missing or repeated: %v", a[i].UID, p.ID)
				continue
			}
			seen[*p.ID] = true
		}
	}
}

// TestEveryQueryParses substitutes the template variables and parses every
// PromQL query of every dashboard, the ClickHouse ones included.
func TestEveryQueryParses(t *testing.T) {
	ds, err := Generate(fullInput())
	if err != nil {
		t.Fatal(err)
	}
	var prom, sql int
	for _, d := range ds {
		qs, err := Queries(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range qs {
			switch q.Datasource {
			case PrometheusType:
				prom++
				expr := Substitute(q.Expr, testVars)
				if strings.Contains(expr, "$") {
					t.Errorf("%s: unsubstituted variable in %s", q.Name(), expr)
				}
				if _, err := store.NewParser().ParseExpr(expr); err != nil {
					t.Errorf("%s: %s: %v", q.Name(), expr, err)
				}
			case ClickHouseType:
				sql++
				if !strings.Contains(q.SQL, "tw.samples_5m") || q.Expr != "" {
					t.Errorf("%s: SQL does not read the rollup of database tw:\n%s", q.Name(), q.SQL)
				}
			default:
				t.Errorf("%s: data source type %q", q.Name(), q.Datasource)
			}
		}
	}
	if prom < 40 || sql != 4 {
		t.Errorf("%d PromQL and %d SQL queries, want at least 40 and 4", prom, sql)
	}
}

// TestGeneratedFromConfig checks what depends on the configuration: one
// row per policy, a forecast only where configured, ClickHouse panels only
// when asked for.
func TestGeneratedFromConfig(t *testing.T) {
	titles := func(in Input, uid string) string {
		ds, err := Generate(in)
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			Panels []struct {
				Type, Title string
				Targets     []struct{ Expr string }
			} `json:"panels"`
		}
		for _, d := range ds {
			if d.UID == uid {
				json.Unmarshal(d.JSON, &m)
			}
		}
		var b strings.Builder
		for _, p := range m.Panels {
			b.WriteString(p.Type + ":" + p.Title)
			for _, tg := range p.Targets {
				if strings.Contains(tg.Expr, "forecast") {
					b.WriteString("[forecast]")
				}
			}
			b.WriteString("\n")
		}
		return b.String()
	}
	got := titles(fullInput(), UIDAutoscaling)
	for _, want := range []string{
		"row:Policy api (api)\n", "timeseries:api: current vs desired replicas\n", "timeseries:api: forecast vs actual load[forecast]\n",
		"row:Policy worker (worker)\n", "timeseries:worker: forecast vs actual load\n", "timeseries:worker: utilization vs target\n",
		"timeseries:Daily peak of desired replicas, per policy\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("autoscaling dashboard lacks %q:\n%s", want, got)
		}
	}
	if got := titles(Input{}, UIDAutoscaling); strings.Contains(got, "Policy") || strings.Contains(got, "ClickHouse") {
		t.Errorf("autoscaling dashboard without policies:\n%s", got)
	}
	if got := titles(Input{}, UIDTidewatch); strings.Contains(got, "ClickHouse") {
		t.Errorf("Tidewatch dashboard of an embedded store has ClickHouse panels:\n%s", got)
	}
	if got := titles(fullInput(), UIDTidewatch); !strings.Contains(got, "ClickHouse insert latency") || !strings.Contains(got, "ClickHouse queue") {
		t.Errorf("Tidewatch dashboard of a ClickHouse store:\n%s", got)
	}
}

func TestWriteDir(t *testing.T) {
	ds, err := Generate(fullInput())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	paths, err := WriteDir(dir, ds, Provisioning{TidewatchURL: "http://tw:9470", ScrapeInterval: "15s"})
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != len(ds)+2 {
		t.Errorf("wrote %v", paths)
	}
	for _, d := range ds {
		b, err := os.ReadFile(filepath.Join(dir, d.UID+".json"))
		if err != nil || !bytes.Equal(b, d.JSON) || !json.Valid(b) {
			t.Errorf("%s.json: %v", d.UID, err)
		}
	}
	var dsf struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name, Type, UID, URL, Access string
			IsDefault                    bool           `yaml:"isDefault"`
			JSONData                     map[string]any `yaml:"jsonData"`
		} `yaml:"datasources"`
	}
	readYAML(t, filepath.Join(dir, DatasourcesFile), &dsf)
	if dsf.APIVersion != 1 || len(dsf.Datasources) != 1 {
		t.Fatalf("datasources file: %+v", dsf)
	}
	if d := dsf.Datasources[0]; d.Type != "prometheus" || d.UID != DatasourceUID || d.URL != "http://tw:9470" || d.Access != "proxy" || !d.IsDefault || d.JSONData["timeInterval"] != "15s" {
		t.Errorf("data source: %+v", d)
	}
	var pf struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Name, Type, Folder string
			Options            struct{ Path string } `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, filepath.Join(dir, ProvidersFile), &pf)
	if pf.APIVersion != 1 || len(pf.Providers) != 1 || pf.Providers[0].Type != "file" || pf.Providers[0].Options.Path != dir || pf.Providers[0].Folder != DefaultFolder {
		t.Errorf("providers file: %+v", pf)
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func TestSubstitute(t *testing.T) {
	got := Substitute(`rate(x{job=~"$job",i=~"${instance}"}[$__rate_interval]) + $__interval`, testVars)
	if want := `rate(x{job=~".+",i=~".+"}[1m]) + 15s`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    Config
		ok   bool
	}{
		{"empty", Config{}, true},
		{"names", Config{RequestsMetric: "reqs_total", LatencyHistogram: "lat_seconds"}, true},
		{"bad", Config{RequestsMetric: "reqs-total"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.c.Validate(); (err == nil) != tc.ok {
				t.Errorf("Validate() = %v", err)
			}
		})
	}
}
