package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"

	"github.com/tidewatch/tidewatch/alerting"
	"github.com/tidewatch/tidewatch/collector"
	"github.com/tidewatch/tidewatch/config"
	"github.com/tidewatch/tidewatch/internal/fileread"
)

// checkCommand validates files: `check config FILE…` and `check rules
// FILE…`. It prints every problem as file:line: field: message and exits 1
// when there is one.
func checkCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) >= 2 && args[0] == "rules" {
		return checkRulesCommand(args[1:], stdout)
	}
	if len(args) < 2 || args[0] != "config" {
		fmt.Fprintln(stderr, "usage: tidewatch check config FILE...\n       tidewatch check rules FILE...")
		return 2
	}
	status := 0
	for _, file := range args[1:] {
		probs := checkConfigFile(file)
		if len(probs) == 0 {
			fmt.Fprintf(stdout, "%s: OK\n", file)
			continue
		}
		status = 1
		for _, p := range probs {
			fmt.Fprintln(stdout, p)
		}
	}
	return status
}

// checkConfigFile finds what serve would find in file: the configuration's
// problems, then the files it names that serve reads at start (rule files,
// token, secret, password and TLS files), then the rules themselves.
func checkConfigFile(file string) []string {
	logger := slog.New(slog.DiscardHandler)
	cfg, err := config.Load(file, logger)
	if err != nil {
		var probs config.Problems
		if errors.As(err, &probs) {
			return lines(probs)
		}
		return []string{fmt.Sprintf("%s: %v", file, err)}
	}
	out := lines(cfg.CheckFiles())
	// What the collector checks before it takes a configuration: every
	// job's HTTP client (CA and client certificate files, credentials) and
	// every discoverer builds.
	if err := collector.CheckConfig(cfg.Prom, logger); err != nil {
		for _, e := range splitJoined(err) {
			out = append(out, jobProblem(cfg, e).String())
		}
	}
	ruleFiles, err := alerting.RuleFiles(cfg.RuleFiles)
	if err != nil {
		return append(out, fmt.Sprintf("%s: %v", file, err))
	}
	// Files that cannot be read are in CheckFiles' problems, at their rule_files line.
	ruleFiles = slices.DeleteFunc(ruleFiles, func(f string) bool { return fileread.Check(f, fileread.RuleFileLimit) != nil })
	return append(out, lines(alerting.CheckRuleFiles(ruleFiles, logger))...)
}

// jobProblem places a collector check error at its scrape job's line.
func jobProblem(cfg *config.Config, err error) config.Problem {
	var je *collector.JobError
	if errors.As(err, &je) {
		for i, sc := range cfg.ScrapeConfigs {
			if sc.JobName == je.Job {
				return cfg.Problem(fmt.Sprintf("scrape_configs[%d]", i), err.Error())
			}
		}
	}
	return cfg.Problem("scrape_configs", err.Error())
}

// splitJoined unwraps an errors.Join into its errors.
func splitJoined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func lines[P fmt.Stringer](ps []P) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

// checkRulesCommand validates Prometheus rule files like promtool check rules.
func checkRulesCommand(files []string, stdout io.Writer) int {
	status := 0
	for _, file := range files {
		probs := alerting.CheckRuleFiles([]string{file}, nil)
		if len(probs) == 0 {
			fmt.Fprintf(stdout, "%s: OK\n", file)
			continue
		}
		status = 1
		for _, p := range probs {
			fmt.Fprintln(stdout, p.String())
		}
	}
	return status
}
