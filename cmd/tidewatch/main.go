// Command tidewatch is Tidewatch's single binary: the service (serve), the
// demo, the configuration and rule checker (check), the policy backtest,
// capacity analytics (analyze), the autoscaler client, the Grafana
// dashboards generator and build information (version). It parses flags
// and wires packages together; the process itself is assembled by package
// app.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage: tidewatch <command> [flags]

commands:
  serve    --config FILE [--web.listen-address ADDR]   run the service
  demo     [--duration D]                              the demo: a fleet under load, scraped,
                                                       probed, alerted on and autoscaled
  check    config FILE                                 validate a configuration file
  check    rules FILE...                               validate Prometheus rule files
  backtest --config FILE --policy NAME --from T --to T replay a scaling policy over history
           (or --load FILE.csv) through the reference model and report its cost
  tune     --config FILE --policy NAME (--load FILE.csv | --from T --to T)
           search the policy's parameters by backtest: Pareto front and a YAML snippet
  analyze  --config FILE [--from T --to T]            capacity per instance, recommended settings
           [--output table|json|html]                  and their cost, from stored history
  autoscaler explain POLICY [--url URL]                why a running Tidewatch scaled as it did
  dashboards generate --config FILE --out DIR         write Grafana dashboards and provisioning
  dashboards push --config FILE --grafana-url URL     upsert the dashboards into a Grafana
  version                                              print build information

Run 'tidewatch <command> --help' for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		defer stop()
		return serveCommand(ctx, args[1:], stdout, stderr)
	case "demo":
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		defer stop()
		return demoCommand(ctx, args[1:], stdout, stderr)
	case "check":
		return checkCommand(args[1:], stdout, stderr)
	case "backtest":
		return backtestCommand(context.Background(), args[1:], stdout, stderr)
	case "tune":
		return tuneCommand(context.Background(), args[1:], stdout, stderr)
	case "analyze":
		return analyzeCommand(context.Background(), args[1:], stdout, stderr)
	case "autoscaler":
		return autoscalerCommand(context.Background(), args[1:], stdout, stderr)
	case "dashboards":
		return dashboardsCommand(context.Background(), args[1:], stdout, stderr)
	case "version", "--version", "-version":
		return versionCommand(stdout)
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "tidewatch: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}
