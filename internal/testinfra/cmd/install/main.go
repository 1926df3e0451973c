// Command install installs the Debian packages the integration tests need,
// with the same rules as testinfra.Need (root only, apt-get serialized by a
// file lock, services never started). It does nothing when all packages are
// installed. `make test` runs it before `go test`:
//
//	go run ./internal/testinfra/cmd/install prometheus prometheus-node-exporter clickhouse-server clickhouse-client
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/tidewatch/tidewatch/internal/testinfra"
)

func main() {
	pkgs := os.Args[1:]
	if len(pkgs) == 0 {
		fmt.Fprintln(os.Stderr, "usage: install PACKAGE...")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	if err := testinfra.Install(ctx, os.Stderr, pkgs...); err != nil {
		fmt.Fprintf(os.Stderr, "install: %v\n", err)
		stop()
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "install: %s installed (%s)\n", strings.Join(pkgs, " "), time.Since(start).Round(time.Millisecond))
}
