package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tidewatch/tidewatch/autoscaler"
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
	c := apiClient{base: strings.TrimRight(*base, "/")}
	if *tokenFile != "" {
		b, err := fileread.ReadFile(*tokenFile, fileread.SecretLimit)
		if err != nil {
			fmt.Fprintf(stderr, "autoscaler: %v\n", err)
			return 1
		}
		c.token = strings.TrimSpace(string(b))
	}
	needPolicy := func() (string, bool) {
		if len(positional) != 1 {
			fmt.Fprintf(stderr, "usage: tidewatch autoscaler %s POLICY\n", sub)
			return "", false
		}
		return positional[0], true
	}
	switch sub {
	case "explain":
		name, ok := needPolicy()
		if !ok {
			return 2
		}
		var ds []autoscaler.Decision
		q := url.Values{"policy": {name}, "limit": {fmt.Sprint(*limit)}}
		if err := c.do(ctx, http.MethodGet, "/api/v1/autoscaler/decisions?"+q.Encode(), &ds); err != nil {
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
	case "policies":
		var ps []autoscaler.PolicyStatus
		if err := c.do(ctx, http.MethodGet, "/api/v1/autoscaler/policies", &ps); err != nil {
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
	case "pause", "resume":
		name, ok := needPolicy()
		if !ok {
			return 2
		}
		var p autoscaler.PolicyStatus
		if err := c.do(ctx, http.MethodPost, "/api/v1/autoscaler/policies/"+url.PathEscape(name)+"/"+sub, &p); err != nil {
			fmt.Fprintf(stderr, "autoscaler %s: %v\n", sub, err)
			return 1
		}
		fmt.Fprintf(stdout, "policy %s: paused=%v\n", p.Name, p.Paused)
		return 0
	default:
		fmt.Fprintf(stderr, "autoscaler: unknown subcommand %q\n\n%s", sub, autoscalerUsage)
		return 2
	}
}

type apiClient struct {
	base, token string
}

// do calls the API and decodes the data of its envelope into out.
func (c apiClient) do(ctx context.Context, method, path string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(nil))
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	var env struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
		Error  string          `json:"error"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("%s %s answered %s: %.200s", method, path, resp.Status, body)
	}
	if env.Status != "success" {
		return fmt.Errorf("%s %s answered %s: %s", method, path, resp.Status, env.Error)
	}
	return json.Unmarshal(env.Data, out)
}
