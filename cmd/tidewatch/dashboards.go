package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/tidewatch/tidewatch/config"
	"github.com/tidewatch/tidewatch/dashboards"
	"github.com/tidewatch/tidewatch/internal/fileread"
	"github.com/tidewatch/tidewatch/web"
)

const dashboardsUsage = `usage:
  tidewatch dashboards generate --config FILE --out DIR [--tidewatch-url URL]
  tidewatch dashboards push --config FILE --grafana-url URL [--token T | --token-file F | --basic-auth USER:PASS]
`

// dashboardsCommand generates Grafana dashboards and provisioning files, or
// pushes the dashboards to a Grafana.
func dashboardsCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, dashboardsUsage)
		return 2
	}
	switch args[0] {
	case "generate":
		return dashboardsGenerate(args[1:], stdout, stderr)
	case "push":
		return dashboardsPush(ctx, args[1:], stdout, stderr)
	case "help", "--help", "-h":
		fmt.Fprint(stdout, dashboardsUsage)
		return 0
	default:
		fmt.Fprintf(stderr, "dashboards: unknown subcommand %q\n%s", args[0], dashboardsUsage)
		return 2
	}
}

// generateDashboards loads the configuration and builds the dashboards from it.
func generateDashboards(configFile string) (*config.Config, []dashboards.Dashboard, error) {
	cfg, err := config.Load(configFile, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	ds, err := dashboards.Generate(cfg.DashboardsInput())
	if err != nil {
		return nil, nil, err
	}
	return cfg, ds, nil
}

func dashboardsGenerate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dashboards generate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := fs.String("config", "tidewatch.yml", "configuration file")
	out := fs.String("out", "", "output directory (required)")
	twURL := fs.String("tidewatch-url", "", "Tidewatch's URL as Grafana reaches it (default: from web.external_url or web.listen_address)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *out == "" || fs.NArg() > 0 {
		fmt.Fprint(stderr, dashboardsUsage)
		return 2
	}
	cfg, ds, err := generateDashboards(*configFile)
	if err != nil {
		fmt.Fprintf(stderr, "dashboards generate: %v\n", err)
		return 1
	}
	u := *twURL
	if u == "" {
		u = tidewatchURL(cfg)
	}
	paths, err := dashboards.WriteDir(*out, ds, dashboards.Provisioning{
		TidewatchURL:   u,
		ScrapeInterval: cfg.Global.ScrapeInterval.String(),
		Folder:         dashboards.DefaultFolder,
	})
	for _, p := range paths {
		fmt.Fprintln(stdout, p)
	}
	if err != nil {
		fmt.Fprintf(stderr, "dashboards generate: %v\n", err)
		return 1
	}
	return 0
}

// tidewatchURL is where Grafana reaches this Tidewatch (web.ExternalURL).
func tidewatchURL(cfg *config.Config) string {
	u, _ := web.ExternalURL(cfg.Web)
	return strings.TrimSuffix(u.String(), "/")
}

func dashboardsPush(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dashboards push", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := fs.String("config", "tidewatch.yml", "configuration file")
	grafanaURL := fs.String("grafana-url", "", "Grafana's URL (required)")
	token := fs.String("token", "", "Grafana service account token or API key")
	tokenFile := fs.String("token-file", "", "file holding the token")
	basicAuth := fs.String("basic-auth", "", "USER:PASSWORD for basic auth")
	folder := fs.String("folder", dashboards.DefaultFolder, "folder title")
	folderUID := fs.String("folder-uid", dashboards.DefaultFolderUID, "folder uid")
	timeout := fs.Duration("timeout", 30*time.Second, "timeout of the whole push")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	auths := 0
	for _, s := range []string{*token, *tokenFile, *basicAuth} {
		if s != "" {
			auths++
		}
	}
	if *grafanaURL == "" || fs.NArg() > 0 || auths > 1 {
		fmt.Fprint(stderr, dashboardsUsage)
		return 2
	}
	c := &dashboards.Client{URL: *grafanaURL, Token: *token, HTTP: &http.Client{}}
	if *tokenFile != "" {
		b, err := fileread.ReadFile(*tokenFile, fileread.SecretLimit)
		if err != nil {
			fmt.Fprintf(stderr, "dashboards push: read token file: %v\n", err)
			return 1
		}
		c.Token = strings.TrimSpace(string(b))
	}
	if *basicAuth != "" {
		user, pass, ok := strings.Cut(*basicAuth, ":")
		if !ok || user == "" {
			fmt.Fprintln(stderr, "dashboards push: --basic-auth must be USER:PASSWORD")
			return 2
		}
		c.User, c.Password = user, pass
	}
	_, ds, err := generateDashboards(*configFile)
	if err != nil {
		fmt.Fprintf(stderr, "dashboards push: %v\n", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	results, err := c.Push(ctx, ds, *folderUID, *folder)
	for _, r := range results {
		fmt.Fprintf(stdout, "%s version %d %s\n", r.UID, r.Version, r.URL)
	}
	if err != nil {
		fmt.Fprintf(stderr, "dashboards push: %v\n", err)
		return 1
	}
	return 0
}
