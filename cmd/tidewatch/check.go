package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/tidewatch/tidewatch/alerting"
	"github.com/tidewatch/tidewatch/internal/config"
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
	logger := slog.New(slog.DiscardHandler)
	status := 0
	for _, file := range args[1:] {
		_, err := config.Load(file, logger)
		if err == nil {
			fmt.Fprintf(stdout, "%s: OK\n", file)
			continue
		}
		status = 1
		var probs config.Problems
		if errors.As(err, &probs) {
			for _, p := range probs {
				fmt.Fprintln(stdout, p.String())
			}
			continue
		}
		fmt.Fprintf(stdout, "%s: %v\n", file, err)
	}
	return status
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
