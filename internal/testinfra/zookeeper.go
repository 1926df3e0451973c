package testinfra

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// zooKeeperClassPath is the Debian package's configuration dir and jars
// (zookeeper.jar's manifest brings in the rest).
var zooKeeperClassPath = []string{
	"/etc/zookeeper/conf",
	"/usr/share/java/zookeeper.jar",
	"/usr/share/java/slf4j-log4j12.jar",
	"/usr/share/java/log4j-1.2.jar",
}

// StartZooKeeper starts a standalone ZooKeeper (Debian package zookeeper)
// with its data in a temp dir, listening on a free 127.0.0.1 port, and
// returns its client address (127.0.0.1:port) once it answers "imok" to the
// ruok command. It is stopped when the test ends.
func StartZooKeeper(t testing.TB) (addr string) {
	t.Helper()
	java := Need(t, "zookeeper", "java")["java"]
	for _, p := range zooKeeperClassPath {
		if _, err := os.Stat(p); err != nil {
			unavailable(t, "zookeeper: %v", err)
		}
	}
	dir := t.TempDir()
	port := FreePort(t)
	addr = "127.0.0.1:" + strconv.Itoa(port)
	cfg := fmt.Sprintf(`# Written by tidewatch testinfra.
tickTime=500
initLimit=10
syncLimit=5
dataDir=%s
clientPort=%d
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=ruok
maxClientCnxns=0
`, filepath.Join(dir, "data"), port)
	cfgPath := filepath.Join(dir, "zoo.cfg")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatalf("write zookeeper config: %v", err)
	}
	p := Start(t, "zookeeper", []string{
		java, "-Xmx256m", "-Dzookeeper.root.logger=INFO,CONSOLE",
		"-cp", strings.Join(zooKeeperClassPath, ":"),
		"org.apache.zookeeper.server.ZooKeeperServerMain", cfgPath,
	}, WithDir(dir))
	ctx, cancel := context.WithTimeout(t.Context(), readyTimeout)
	defer cancel()
	start := time.Now()
	var last error
	for {
		if last = zooKeeperRuok(ctx, addr); last == nil {
			t.Logf("zookeeper ready at %s in %s (pid %d)", addr, time.Since(start).Round(time.Millisecond), p.PID)
			return addr
		}
		select {
		case <-p.Done():
			unavailable(t, "zookeeper exited: %v (last check: %v)\nlast %d lines of %s:\n%s", p.Err(), last, logTailLines, p.LogPath, p.Tail(logTailLines))
		case <-ctx.Done():
			unavailable(t, "zookeeper not ready at %s: %v (last check: %v)\nlast %d lines of %s:\n%s", addr, ctx.Err(), last, logTailLines, p.LogPath, p.Tail(logTailLines))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// zooKeeperRuok sends ZooKeeper's four-letter command ruok and wants imok.
func zooKeeperRuok(ctx context.Context, addr string) error {
	var d net.Dialer
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if _, err := io.WriteString(c, "ruok"); err != nil {
		return err
	}
	b, err := io.ReadAll(c)
	if err != nil {
		return err
	}
	if string(b) != "imok" {
		return fmt.Errorf("ruok answered %q", b)
	}
	return nil
}
