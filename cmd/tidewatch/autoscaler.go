package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tidewatch/tidewatch/autoscaler"
	"github.com/tidewatch/tidewatch/internal/api"
	"github.com/tidewatch/tidewatch/internal/fileread"
)

const autoscalerUsage = `usage: tidewatch autoscaler <subcommand> [flags]

subcommands:
  explain POLICY [--limit N]   the latest decisions of POLICY in plain words
  policies                     every policy with its last decision
  pause POLICY                 stop POLICY from acting (it keeps deciding)
  resume POLICY                let POLICY act again

flags: --url URL (default http://127.0.0.1:9470), --bearer-token-file FILE
`

// autoscalerCommand talks to a running Tidewatch's autoscaler API.
func autoscalerCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, autoscalerUsage)
		return 2
	}
	sub := args[0]
	fs := flag.NewFlagSet("autoscaler "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("url", "http://127.0.0.1:9470", "URL of a running Tidewatch")
	tokenFile := fs.String("bearer-token-file", "", "file holding the API bearer token")
	limit := fs.Int("limit", 1, "explain: how many decisions, newest first")
	// Flags may come before or after the policy name.
	var positional []string
	rest := args[1:]
	for {
		if err := fs.Parse(rest); err != nil {
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	c := api.Client{Base: strings.TrimRight(*base, "/")}
	if *tokenFile != "" {
		b, err := fileread.ReadFile(*tokenFile, fileread.SecretLimit)
		if err != nil {
			fmt.Fprintf(stderr, "autoscaler: %v\n", err)
			return 1
		}
		c.Token = strings.TrimSpace(string(b))
	}
	if sub == "policies" {
		return autoscalerPolicies(ctx, c, stdout, stderr)
	}
	if sub != "explain" && sub != "pause" && sub != "resume" {
		fmt.Fprintf(stderr, "autoscaler: unknown subcommand %q\n\n%s", sub, autoscalerUsage)
		return 2
	}
	if len(positional) != 1 {
		fmt.Fprintf(stderr, "usage: tidewatch autoscaler %s POLICY\n", sub)
		return 2
	}
	if sub == "explain" {
		return autoscalerExplain(ctx, c, positional[0], *limit, stdout, stderr)
	}
	var p autoscaler.PolicyStatus
	if err := c.Do(ctx, http.MethodPost, "/api/v1/autoscaler/policies/"+url.PathEscape(positional[0])+"/"+sub, nil, &p); err != nil {
		fmt.Fprintf(stderr, "autoscaler %s: %v\n", sub, err)
		return 1
	}
	fmt.Fprintf(stdout, "policy %s: paused=%v\n", p.Name, p.Paused)
	return 0
}

func autoscalerExplain(ctx context.Context, c api.Client, name string, limit int, stdout, stderr io.Writer) int {
	var ds []autoscaler.Decision
	q := url.Values{"policy": {name}, "limit": {fmt.Sprint(limit)}}
	if err := c.Do(ctx, http.MethodGet, "/api/v1/autoscaler/decisions", q, &ds); err != nil {
		fmt.Fprintf(stderr, "autoscaler explain: %v\n", err)
		return 1
	}
	if len(ds) == 0 {
		fmt.Fprintf(stderr, "autoscaler explain: policy %q has no decisions yet (is it configured?)\n", name)
		return 1
	}
	for i, d := range ds {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		fmt.Fprint(stdout, d.Explain())
	}
	return 0
}

func autoscalerPolicies(ctx context.Context, c api.Client, stdout, stderr io.Writer) int {
	var ps []autoscaler.PolicyStatus
	if err := c.Do(ctx, http.MethodGet, "/api/v1/autoscaler/policies", nil, &ps); err != nil {
		fmt.Fprintf(stderr, "autoscaler policies: %v\n", err)
		return 1
	}
	for _, p := range ps {
		state := "active"
		switch {
		case p.Paused:
			state = "paused"
		case p.DryRun:
			state = "dry-run"
		}
		last := "no decision yet"
		if d := p.LastDecision; d != nil {
			last = fmt.Sprintf("%s: %d → %d (%s)", d.Time.Format(time.TimeOnly), d.Current, d.Desired, d.Action)
		}
		fmt.Fprintf(stdout, "%-20s %-8s %s/%s min %d max %d every %s; %s\n", p.Name, state, p.Backend, p.Target.Name, p.Min, p.Max, p.Interval, last)
	}
	return 0
}
