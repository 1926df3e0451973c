package config

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"

	promconfig "github.com/prometheus/prometheus/config"
	yaml2 "go.yaml.in/yaml/v2"
	yaml3 "go.yaml.in/yaml/v3"

	"github.com/tidewatch/tidewatch/alerting/notify"
	"github.com/tidewatch/tidewatch/autoscaler"
	"github.com/tidewatch/tidewatch/autoscaler/analysis"
	"github.com/tidewatch/tidewatch/collector"
	twdiscovery "github.com/tidewatch/tidewatch/collector/discovery"
	"github.com/tidewatch/tidewatch/collector/probe"
	"github.com/tidewatch/tidewatch/dashboards"
	"github.com/tidewatch/tidewatch/internal/fileread"
	"github.com/tidewatch/tidewatch/store"
	"github.com/tidewatch/tidewatch/web"
)

// Config is the whole file.
//
// A field whose yaml key and Go type are those of a field of Prometheus'
// config.Config (global, scrape_configs, scrape_config_files, rule_files,
// alerting…) is a Prometheus section: it is decoded by promconfig.Load and
// copied from Prom. Every other field is a Tidewatch section: decoded on its
// own with yaml.v2, ${ENV}-expanded, and checked with its Validate() error
// method when it has one. Adding a section is adding a field.
type Config struct {
	Global            promconfig.GlobalConfig    `yaml:"global"`
	ScrapeConfigs     []*promconfig.ScrapeConfig `yaml:"scrape_configs"`
	ScrapeConfigFiles []string                   `yaml:"scrape_config_files"`
	// RuleFiles are globs of Prometheus rule files, made absolute against
	// the config file's directory.
	RuleFiles []string `yaml:"rule_files"`
	// Alerting is Prometheus' alerting section (alertmanagers, alert_relabel_configs).
	Alerting promconfig.AlertingConfig `yaml:"alerting"`
	// Storage is the storage section. storage.embedded.path stays relative to
	// the working directory (it is data, not configuration).
	Storage store.Config      `yaml:"storage"`
	Query   store.QueryConfig `yaml:"query"`
	// Web is the web section; bearer_token_file and tls_server_config's
	// cert_file and key_file are made relative to the config file's directory.
	Web web.Config `yaml:"web"`
	// ProbeConfigs are the probe jobs (blackbox_exporter modules fed by
	// service discovery and relabeling).
	ProbeConfigs probe.Configs `yaml:"probe_configs"`
	// Collector is the collector section (sharding of targets).
	Collector collector.Config `yaml:"collector"`
	// Autoscaling is the autoscaling section (backends and policies).
	Autoscaling autoscaler.Config `yaml:"autoscaling"`
	// Analysis is the capacity analytics section (objectives, cost).
	Analysis analysis.Config `yaml:"analysis"`
	// Notifications is the built-in notifier: Alertmanager's route,
	// inhibit_rules, receivers and templates.
	Notifications notify.Config `yaml:"notifications"`
	// Dashboards is the dashboards section (tidewatch dashboards generate/push).
	Dashboards dashboards.Config `yaml:"dashboards"`

	// Prom is the Prometheus view of the file (global, scrape_configs,
	// scrape_config_files), produced by promconfig.Load so that
	// Prom.GetScrapeConfigs() works, with SetDirectory(dir of file) applied so
	// relative file_sd / credentials paths resolve against the file's directory.
	Prom *promconfig.Config `yaml:"-"`
	// File is the absolute path the config was loaded from.
	File string `yaml:"-"`

	// name is the file as named by the caller, for Problems; keyLines maps
	// a field path to the line of its key (see CheckFiles).
	name     string         `yaml:"-"`
	keyLines map[string]int `yaml:"-"`
}

// Load reads and checks the configuration file, which must be a regular file
// of at most fileread.ConfigLimit bytes. It also refuses scrape_config_files,
// notifications.templates and web TLS files that are not regular files within
// their limit (libraries read those without a bound). When the file is
// invalid the error is Problems, listing every problem found.
func Load(filename string, logger *slog.Logger) (*Config, error) {
	content, err := fileread.ReadFile(filename, fileread.ConfigLimit)
	if err != nil {
		return nil, fmt.Errorf("read config file: %w", err)
	}
	cfg, err := Parse(filename, content, logger)
	if err != nil {
		return nil, err
	}
	if ps := cfg.checkBoundedFiles(); len(ps) > 0 {
		return nil, ps
	}
	return cfg, nil
}

// Parse checks content, the text of the configuration file filename. Relative
// paths in the file resolve against filename's directory. When the content is
// invalid the error is Problems, listing every problem found.
func Parse(filename string, content []byte, logger *slog.Logger) (*Config, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// Every supported *_sd_configs key must be known before anything is decoded.
	twdiscovery.Register()
	abs, err := filepath.Abs(filename)
	if err != nil {
		return nil, fmt.Errorf("resolve config file path: %w", err)
	}
	p := &parser{file: filename, dir: filepath.Dir(abs), logger: logger}
	cfg := p.parse(content)
	if len(p.problems) > 0 {
		ps := sortProblems(p.problems)
		for i := range ps {
			ps[i].File = filename
		}
		return nil, ps
	}
	cfg.File = abs
	cfg.name = filename
	cfg.keyLines = p.walk.keyLines
	return cfg, nil
}

// parser holds the state of one Parse.
type parser struct {
	file     string
	dir      string
	logger   *slog.Logger
	doc      *document
	walk     *walker
	problems Problems
}

func (p *parser) add(line int, field, msg string) {
	p.problems = append(p.problems, Problem{Line: line, Field: field, Message: msg})
}

func (p *parser) problemAt(line int) bool { return p.problemIn([2]int{line, line}) }

func (p *parser) problemIn(r [2]int) bool {
	for _, pr := range p.problems {
		if pr.Line >= r[0] && pr.Line <= r[1] {
			return true
		}
	}
	return false
}

// collect adds the messages of a decode error over the lines in scope, skipping
// what is already reported: a message with a line is dropped when that line
// has a problem; one without a line is dropped when scope has one (it is then
// almost always the same problem, seen by a decoder that stops at the first)
// and otherwise reported at fallback.
func (p *parser) collect(err error, scope [2]int, fallback func(msg string) (int, string)) {
	var lineless []string
	for _, e := range splitYAMLError(err) {
		if e.line > 0 {
			if !p.problemAt(e.line) {
				p.add(e.line, p.walk.lineFields[e.line], e.msg)
			}
			continue
		}
		lineless = append(lineless, e.msg)
	}
	if p.problemIn(scope) {
		return
	}
	for _, m := range lineless {
		line, field := fallback(m)
		p.add(line, field, m)
	}
}

func (p *parser) parse(content []byte) *Config {
	root, err := parseRoot(content)
	if err != nil {
		p.addYAMLError(err)
		return nil
	}
	doc, err := splitSections(content, root)
	if err != nil {
		p.add(root.Line, "", err.Error())
		return nil
	}
	p.doc = doc
	promFields, twFields := sectionFields()

	// ${ENV} in Tidewatch sections, then parse again: the walk sees the values used.
	var envProblems []Problem
	for _, f := range twFields {
		if s := doc.section(yamlKey(f)); s != nil {
			envProblems = append(envProblems, doc.expandEnv(s.start, s.end, os.LookupEnv)...)
		}
	}
	if expanded := strings.Join(doc.lines, "\n"); expanded != string(content) {
		if root, err = parseRoot([]byte(expanded)); err != nil {
			p.problems = append(p.problems, envProblems...)
			p.addYAMLError(err)
			return nil
		}
		if doc, err = splitSections(content, root); err != nil {
			p.add(root.Line, "", err.Error())
			return nil
		}
		doc.lines = p.doc.lines
		p.doc = doc
	}

	// Aliases, then parse again: every part of the file decodes on its own.
	if root != nil {
		lines, prob := expandAliases(p.doc.lines, root)
		if prob != nil {
			p.problems = append(p.problems, envProblems...)
			p.problems = append(p.problems, *prob)
			return nil
		}
		if !slices.Equal(lines, p.doc.lines) {
			expanded := []byte(strings.Join(lines, "\n"))
			if root, err = parseRoot(expanded); err != nil {
				p.problems = append(p.problems, envProblems...)
				p.addYAMLError(err) // not expected: the rendering is valid flow YAML
				return nil
			}
			if doc, err = splitSections(expanded, root); err != nil {
				p.add(root.Line, "", err.Error())
				return nil
			}
			p.doc = doc
		}
	}

	p.walk = newWalker()
	if root != nil {
		p.walk.walk(root, reflect.TypeFor[Config](), "", root.Line)
	}
	p.problems = append(p.problems, p.walk.problems...)
	for _, e := range envProblems {
		e.Field = p.walk.lineFields[e.Line]
		p.problems = append(p.problems, e)
	}

	cfg := &Config{}
	prom := p.loadPrometheus(promFields)
	cv := reflect.ValueOf(cfg).Elem()
	for _, f := range twFields {
		if v, ok := p.loadSection(f); ok {
			cv.FieldByIndex(f.Index).Set(v)
		}
	}
	if prom == nil && len(p.problems) == 0 {
		p.add(0, "", "the prometheus sections could not be loaded") // not expected: a failed Load always leaves a problem
	}
	if len(p.problems) > 0 {
		return nil
	}

	prom.SetDirectory(p.dir)
	pv := reflect.ValueOf(prom).Elem()
	for _, f := range promFields {
		pf, _ := promField(f)
		cv.FieldByIndex(f.Index).Set(pv.FieldByIndex(pf.Index))
	}
	cfg.Prom = prom
	return cfg
}

func (p *parser) addYAMLError(err error) {
	for _, e := range splitYAMLError(err) {
		p.add(e.line, "", e.msg)
	}
}

// sectionFields splits Config's sections into Prometheus' and Tidewatch's.
func sectionFields() (prom, tw []reflect.StructField) {
	t := reflect.TypeFor[Config]()
	for i := range t.NumField() {
		f := t.Field(i)
		if yamlKey(f) == "-" {
			continue
		}
		if _, ok := promField(f); ok {
			prom = append(prom, f)
		} else {
			tw = append(tw, f)
		}
	}
	return prom, tw
}

// promField returns the field of promconfig.Config with f's yaml key and type.
func promField(f reflect.StructField) (reflect.StructField, bool) {
	t := reflect.TypeFor[promconfig.Config]()
	for i := range t.NumField() {
		pf := t.Field(i)
		if pf.IsExported() && yamlKey(pf) == yamlKey(f) && pf.Type == f.Type {
			return pf, true
		}
	}
	return reflect.StructField{}, false
}

func yamlKey(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return name
}

// loadPrometheus decodes the Prometheus sections with promconfig.Load from the
// file's text with every other section blanked, so Prometheus' defaults,
// inheritance from global, validation and line numbers all apply.
func (p *parser) loadPrometheus(fields []reflect.StructField) *promconfig.Config {
	var ranges [][2]int
	for _, f := range fields {
		if s := p.doc.section(yamlKey(f)); s != nil {
			ranges = append(ranges, [2]int{s.start, s.end})
		}
	}
	p.checkJobNames()
	prom, err := promconfig.Load(p.doc.text(ranges...), p.logger)
	if err == nil {
		return prom
	}
	before := len(p.problems)
	var lineless []string
	for _, e := range splitYAMLError(err) {
		switch {
		case e.line > 0:
			if !p.problemAt(e.line) {
				p.add(e.line, p.walk.lineFields[e.line], e.msg)
			}
		case !strings.HasPrefix(e.msg, "found multiple scrape configs"): // checkJobNames has them
			lineless = append(lineless, e.msg)
		}
	}
	if len(lineless) == 0 {
		return nil
	}
	// Load stops at the first error and rarely says where: decode global and
	// each scrape config on its own to find every error and its place.
	var globalRange [][2]int
	if g := p.doc.section("global"); g != nil {
		r := [2]int{g.start, g.end}
		if _, err := promconfig.Load(p.doc.text(r), p.logger); err != nil {
			p.collect(err, r, func(msg string) (int, string) { return hintLine(g.value, "global", g.start, msg) })
		} else {
			globalRange = append(globalRange, r)
		}
	}
	if s := p.doc.section("scrape_configs"); s != nil {
		for i, item := range p.items(s) {
			path := fmt.Sprintf("scrape_configs[%d]", i)
			ranges := append([][2]int{{s.start, s.start}, item.lines}, globalRange...)
			if _, err := promconfig.Load(p.doc.text(ranges...), p.logger); err != nil {
				p.collect(err, item.lines, func(msg string) (int, string) {
					return hintLine(item.node, path, item.node.Line, msg)
				})
			}
		}
	}
	if len(p.problems) == before && len(ranges) > 0 && !p.problemIn([2]int{1, len(p.doc.lines)}) {
		for _, m := range lineless {
			p.add(ranges[0][0], "", m)
		}
	}
	return nil
}

// hints name the key a line-less Prometheus validation message is about.
var hints = []struct{ substr, key string }{
	{"scrape timeout greater than scrape interval", "scrape_timeout"},
	{"fallback_scrape_protocol", "fallback_scrape_protocol"},
	{"scrape protocol", "scrape_protocols"},
	{"validation method", "metric_name_validation_scheme"},
	{"escaping method", "metric_name_escaping_scheme"},
	{"job_name", "job_name"},
}

// hintLine returns the best line for msg, a line-less error about mapping n at path.
func hintLine(n *yaml3.Node, path string, line int, msg string) (int, string) {
	for _, h := range hints {
		if strings.Contains(msg, h.substr) {
			if k := mappingKey(n, h.key); k != nil {
				return k.Line, path + "." + h.key
			}
		}
	}
	if k := mappingKey(n, "job_name"); k != nil {
		return k.Line, path
	}
	return line, path
}

func mappingKey(n *yaml3.Node, key string) *yaml3.Node {
	n = resolveAlias(n)
	if n == nil || n.Kind != yaml3.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i]
		}
	}
	return nil
}

type item struct {
	node  *yaml3.Node
	lines [2]int
}

// items returns the entries of a block-style list section with their lines.
func (p *parser) items(s *section) []item {
	v := resolveAlias(s.value)
	if v.Kind != yaml3.SequenceNode || v.Style&yaml3.FlowStyle != 0 {
		return nil
	}
	items := make([]item, len(v.Content))
	for i, n := range v.Content {
		start := n.Line
		if start > 1 && strings.TrimSpace(p.doc.lines[start-2]) == "-" {
			start-- // "-" alone on the line before the entry
		}
		items[i] = item{node: n, lines: [2]int{start, s.end}}
		if i > 0 {
			items[i-1].lines[1] = start - 1
		}
	}
	return items
}

// checkJobNames reports every repeated job_name, at the repetition.
func (p *parser) checkJobNames() {
	s := p.doc.section("scrape_configs")
	if s == nil || resolveAlias(s.value).Kind != yaml3.SequenceNode {
		return
	}
	first := map[string]int{}
	for i, n := range resolveAlias(s.value).Content {
		k := mappingKey(n, "job_name")
		if k == nil {
			continue
		}
		name := mappingValue(n, "job_name").Value
		if l, ok := first[name]; ok {
			p.add(k.Line, fmt.Sprintf("scrape_configs[%d].job_name", i),
				fmt.Sprintf("found multiple scrape configs with job name %q (first at line %d)", name, l))
			continue
		}
		first[name] = k.Line
	}
}

func mappingValue(n *yaml3.Node, key string) *yaml3.Node {
	n = resolveAlias(n)
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return resolveAlias(n.Content[i+1])
		}
	}
	return nil
}

// loadSection decodes the Tidewatch section of field f on its own with yaml.v2
// from the text with every other section blanked, then runs its Validate.
func (p *parser) loadSection(f reflect.StructField) (reflect.Value, bool) {
	key := yamlKey(f)
	text := key + ": {}\n" // an absent or empty section gets the type's defaults
	if f.Type.Kind() == reflect.Slice {
		text = key + ": []\n" // a list section (probe_configs)
	}
	scope := [2]int{0, 0}
	s := p.doc.section(key)
	if s != nil {
		scope = [2]int{s.start, s.end}
		if !isNull(resolveAlias(s.value)) {
			text = p.doc.text(scope)
		}
	}
	holder := reflect.New(reflect.StructOf([]reflect.StructField{{Name: f.Name, Type: f.Type, Tag: f.Tag}}))
	if err := yaml2.UnmarshalStrict([]byte(text), holder.Interface()); err != nil {
		p.collect(err, scope, func(string) (int, string) { return scope[0], key })
		return reflect.Value{}, false
	}
	if s != nil && p.problemIn(scope) {
		return reflect.Value{}, false
	}
	v := holder.Elem().Field(0)
	if val, ok := v.Addr().Interface().(interface{ Validate() error }); ok {
		for _, m := range errorMessages(val.Validate()) {
			line, field, msg := p.validationPlace(key, scope[0], m)
			p.add(line, field, msg)
		}
	}
	resolvePaths(v.Addr().Interface(), p.dir)
	return v, true
}

var pathRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+|\[\d+\])*$`)

// validationPlace splits a Validate message "storage.embedded.path: must not be
// empty" into the line of the deepest key of that path present in the file,
// the path and the rest.
func (p *parser) validationPlace(key string, line int, msg string) (int, string, string) {
	path, rest, ok := strings.Cut(msg, ": ")
	if !ok || !pathRE.MatchString(path) {
		return line, key, msg
	}
	for q := path; q != ""; {
		if l, ok := p.walk.keyLines[q]; ok {
			return l, path, rest
		}
		i := strings.LastIndexAny(q, ".[")
		if i < 0 {
			break
		}
		q = q[:i]
	}
	return line, path, rest
}

// errorMessages flattens errors.Join trees (and multi-line errors) into messages.
func errorMessages(err error) []string {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, errorMessages(e)...)
		}
		return out
	}
	return strings.Split(err.Error(), "\n")
}

// resolvePaths makes a section's file paths relative to dir, the config file's
// directory, as Prometheus does for its *_file fields.
func resolvePaths(section any, dir string) {
	if s, ok := section.(interface{ SetDirectory(string) }); ok {
		s.SetDirectory(dir)
	}
}

var _ error = Problems(nil)
