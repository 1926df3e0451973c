package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tidewatch/tidewatch/autoscaler/backend"
	"github.com/tidewatch/tidewatch/internal/fileread"
	"github.com/tidewatch/tidewatch/store"
	"github.com/tidewatch/tidewatch/web"
)

// CheckFiles reads, without side effects, every file that serve reads when
// it starts and that the configuration names (Load has checked
// scrape_config_files and notifications.templates already): what rule_files match (each must be a
// regular file within its limit; a directory or a symlink loop matched by a
// glob is a problem), web.bearer_token_file
// (read as the web server does), web.tls_server_config's certificate and key,
// storage.clickhouse.password_file and the autoscaling backends' secret_file,
// token_file and kubeconfig. Each problem names the configuration file, the
// line and the field. The rules themselves are checked by
// alerting.CheckRuleFiles.
func (c *Config) CheckFiles() Problems {
	var ps Problems
	add := func(path string, err error) {
		if err != nil {
			ps = append(ps, Problem{File: c.name, Line: c.lineOf(path), Field: path, Message: fileMessage(err)})
		}
	}
	for i, pat := range c.RuleFiles {
		for _, err := range globFiles(pat, fileread.RuleFileLimit) {
			add("rule_files["+strconv.Itoa(i)+"]", err)
		}
	}
	if c.Web.BearerTokenFile != "" {
		add("web.bearer_token_file", web.CheckConfig(c.Web))
	}
	if t := c.Web.TLSServerConfig; t.CertFile != "" && t.KeyFile != "" {
		cert, err := fileread.ReadFile(t.CertFile, fileread.ConfigLimit)
		add("web.tls_server_config.cert_file", err)
		key, kerr := fileread.ReadFile(t.KeyFile, fileread.ConfigLimit)
		add("web.tls_server_config.key_file", kerr)
		if err == nil && kerr == nil {
			if _, err := tls.X509KeyPair(cert, key); err != nil {
				add("web.tls_server_config", err)
			}
		}
	}
	if c.Storage.Type == store.TypeClickHouse && c.Storage.ClickHouse.PasswordFile != "" {
		_, err := fileread.ReadFile(c.Storage.ClickHouse.PasswordFile, fileread.SecretLimit)
		add("storage.clickhouse.password_file", err)
	}
	for i, b := range c.Autoscaling.Backends {
		path := "autoscaling.backends[" + strconv.Itoa(i) + "]."
		if fc, ok := b.Config.(backend.FileChecker); ok {
			for key, err := range fc.CheckFiles() {
				add(path+key, err)
			}
		}
	}
	return sortProblems(ps)
}

// checkBoundedFiles is Load's check of the files that libraries read later
// without a bound (Prometheus' GetScrapeConfigs, Alertmanager's templates,
// net/http's TLS files): every scrape_config_files and
// notifications.templates match, and web.tls_server_config's files when they
// exist, must be regular files within their limit. A missing TLS file is left
// to serve and CheckFiles to report.
func (c *Config) checkBoundedFiles() Problems {
	var ps Problems
	add := func(path string, err error) {
		ps = append(ps, Problem{File: c.name, Line: c.lineOf(path), Field: path, Message: fileMessage(err)})
	}
	for i, pat := range c.ScrapeConfigFiles {
		for _, err := range globFiles(pat, fileread.ConfigLimit) {
			add("scrape_config_files["+strconv.Itoa(i)+"]", err)
		}
	}
	for i, pat := range c.Notifications.Templates {
		if pat != "" && !filepath.IsAbs(pat) {
			pat = filepath.Join(filepath.Dir(c.File), pat)
		}
		for _, err := range globFiles(pat, fileread.ConfigLimit) {
			add("notifications.templates["+strconv.Itoa(i)+"]", err)
		}
	}
	for key, f := range map[string]string{"cert_file": c.Web.TLSServerConfig.CertFile, "key_file": c.Web.TLSServerConfig.KeyFile} {
		if f == "" {
			continue
		}
		if err := fileread.Check(f, fileread.ConfigLimit); err != nil && !errors.Is(err, fs.ErrNotExist) {
			add("web.tls_server_config."+key, err)
		}
	}
	return sortProblems(ps)
}

// globFiles checks every file pattern matches as fileread would read it.
func globFiles(pattern string, limit int64) []error {
	files, err := filepath.Glob(pattern)
	if err != nil {
		return []error{fmt.Errorf("pattern %q: %w", pattern, err)}
	}
	var errs []error
	for _, f := range files {
		if err := fileread.Check(f, limit); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// fileMessage is err's message with an *fs.PathError shown as "path: what
// went wrong" (not "stat path: …") and a reader's "read <field>: " prefix
// left out, since the problem names the field.
func fileMessage(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Path + ": " + pe.Err.Error()
	}
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "read "); ok {
		if _, after, ok := strings.Cut(rest, ": "); ok {
			return after
		}
	}
	return msg
}

// Problem is a problem at path (e.g. "scrape_configs[1]") of this file, at
// the line of that key: for checks made outside this package (the
// collector's) to report like Load does.
func (c *Config) Problem(path, msg string) Problem {
	return Problem{File: c.name, Line: c.lineOf(path), Field: path, Message: msg}
}

// lineOf is the line of the deepest key of path present in the file, 0 when
// none is.
func (c *Config) lineOf(path string) int {
	for q := path; ; {
		if l, ok := c.keyLines[q]; ok {
			return l
		}
		i := strings.LastIndexAny(q, ".[")
		if i < 0 {
			return 0
		}
		q = q[:i]
	}
}
