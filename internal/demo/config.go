package demo

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"text/template"
)

//go:embed tidewatch.yml.tmpl
var configTemplate string

//go:embed rules.yml
var rulesYAML []byte

// Files are the demo's configuration inputs.
type Files struct {
	Dir            string   // everything goes here
	Listen         string   // Tidewatch's listen address
	WebhookURL     string   // where alerts are delivered
	ServiceCommand []string // one demo instance, with {{.Port}}
	BasePort       int
}

// Write renders the configuration and rule files into f.Dir and returns
// the configuration file's path.
func Write(f Files) (string, error) {
	abs, err := filepath.Abs(f.Dir)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Join(abs, "targets"), 0o755); err != nil {
		return "", fmt.Errorf("create demo dir: %w", err)
	}
	rules := filepath.Join(abs, "rules.yml")
	if err := os.WriteFile(rules, rulesYAML, 0o644); err != nil {
		return "", fmt.Errorf("write demo rules: %w", err)
	}
	t, err := template.New("config").Parse(configTemplate)
	if err != nil {
		return "", fmt.Errorf("parse demo config template: %w", err)
	}
	cfg := filepath.Join(abs, "tidewatch.yml")
	out, err := os.Create(cfg)
	if err != nil {
		return "", fmt.Errorf("write demo config: %w", err)
	}
	defer out.Close()
	err = t.Execute(out, map[string]any{
		"Listen": f.Listen, "WebhookURL": f.WebhookURL, "ServiceCommand": f.ServiceCommand, "BasePort": f.BasePort,
		"RulesFile": rules, "SDFile": filepath.Join(abs, "targets", "demo.json"), "StorePath": filepath.Join(abs, "tsdb"),
	})
	if err != nil {
		return "", fmt.Errorf("render demo config: %w", err)
	}
	return cfg, out.Close()
}

// SDFile is where the process backend lists the instances.
func SDFile(dir string) string { return filepath.Join(dir, "targets", "demo.json") }
