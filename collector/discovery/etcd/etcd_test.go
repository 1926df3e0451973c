package etcd

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/discovery/targetgroup"
	yaml2 "go.yaml.in/yaml/v2"
)

func TestConfig(t *testing.T) {
	tests := []struct {
		name, yaml string
		wantErr    []string
	}{
		{name: "defaults", yaml: `endpoints: ["127.0.0.1:2379"]`},
		{name: "tls and auth", yaml: `{endpoints: ["https://etcd:2379"], prefix: /svc/, username: u, password_file: p, tls_config: {ca_file: ca.pem}}`},
		{name: "no endpoints", yaml: `prefix: /x/`, wantErr: []string{"endpoints must not be empty"}},
		{name: "bad scheme", yaml: `endpoints: ["ftp://etcd:2379"]`, wantErr: []string{`scheme "ftp"`}},
		{name: "empty prefix", yaml: `{endpoints: [e:1], prefix: ""}`, wantErr: []string{"prefix must not be empty"}},
		{name: "two passwords", yaml: `{endpoints: [e:1], username: u, password: a, password_file: b}`, wantErr: []string{"at most one of password"}},
		{name: "password without user", yaml: `{endpoints: [e:1], password: a}`, wantErr: []string{"needs a username"}},
		{name: "unknown field", yaml: `{endpoints: [e:1], prefixx: /a/}`, wantErr: []string{"prefixx"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c SDConfig
			err := yaml2.UnmarshalStrict([]byte(tc.yaml), &c)
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if c.Prefix == "" || c.DialTimeout <= 0 {
					t.Errorf("defaults not applied: %+v", c)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	var c SDConfig
	if err := yaml2.UnmarshalStrict([]byte(`{endpoints: [e:1], password_file: p, username: u, tls_config: {ca_file: ca.pem}}`), &c); err != nil {
		t.Fatal(err)
	}
	c.SetDirectory("/etc/tw")
	if c.PasswordFile != "/etc/tw/p" || c.TLSConfig.CAFile != "/etc/tw/ca.pem" {
		t.Errorf("SetDirectory: %q %q", c.PasswordFile, c.TLSConfig.CAFile)
	}
}

// TestUpdate checks the groups sent for a key's successive values: one
// group, a list, a shorter list, an invalid value, a deletion.
func TestUpdate(t *testing.T) {
	m := (&SDConfig{}).NewDiscovererMetrics(prometheus.NewRegistry(), nil).(*metrics)
	d := &Discovery{sent: map[string]int{}, metrics: m, logger: nil}
	d.logger = discardLogger()
	type want struct {
		source  string
		targets int
		label   string // the "service" label, "" for an empty group
	}
	check := func(step string, got []*targetgroup.Group, wants ...want) {
		t.Helper()
		if len(got) != len(wants) {
			t.Fatalf("%s: got %d groups, want %d: %v", step, len(got), len(wants), got)
		}
		for i, w := range wants {
			g := got[i]
			if g.Source != w.source || len(g.Targets) != w.targets || string(g.Labels["service"]) != w.label {
				t.Errorf("%s: group %d = %s %v %v, want %+v", step, i, g.Source, g.Targets, g.Labels, w)
			}
			if w.targets > 0 && string(g.Labels[keyLabel]) != "/s/a" {
				t.Errorf("%s: group %d has %s=%q", step, i, keyLabel, g.Labels[keyLabel])
			}
		}
	}
	check("object", d.update("/s/a", []byte(`{"targets": ["h:1", "h:2"], "labels": {"service": "x"}}`)),
		want{"etcd:/s/a", 2, "x"})
	check("list", d.update("/s/a", []byte(` [{"targets": ["h:1"], "labels": {"service": "x"}}, {"targets": ["h:3"], "labels": {"service": "y"}}]`)),
		want{"etcd:/s/a", 1, "x"}, want{"etcd:/s/a#1", 1, "y"})
	check("shorter list", d.update("/s/a", []byte(`[{"targets": ["h:1"], "labels": {"service": "x"}}]`)),
		want{"etcd:/s/a", 1, "x"}, want{"etcd:/s/a#1", 0, ""})
	check("invalid", d.update("/s/a", []byte(`{"targets": "h:1"}`)),
		want{"etcd:/s/a", 0, ""})
	check("unknown field", d.update("/s/a", []byte(`{"target": ["h:1"]}`)))
	check("valid again", d.update("/s/a", []byte(`{"targets": ["h:1"], "labels": {"service": "x"}}`)),
		want{"etcd:/s/a", 1, "x"})
	check("deleted", d.update("/s/a", nil), want{"etcd:/s/a", 0, ""})
	check("deleted twice", d.update("/s/a", nil))
	if got := testCounter(m.invalidValues); got != 2 {
		t.Errorf("invalid values counted: %v, want 2", got)
	}
}
