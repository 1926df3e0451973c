package testinfra

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// ClickHouse is a clickhouse-server (Debian package clickhouse-server, with
// clickhouse-client) running on loopback with its data in Dir. Stop and Start
// restart it on the same data dir and ports.
type ClickHouse struct {
	Addr    string // native protocol, 127.0.0.1:port
	HTTPURL string // http://127.0.0.1:port
	Dir     string // config.xml, config.d/, data/, log/
	Proc    *Process
	Client  string // path of clickhouse-client

	t      testing.TB
	server string
}

// listenHost matches the listen_host elements of the packaged config.xml;
// they are removed so that the server listens on 127.0.0.1 only.
var listenHost = regexp.MustCompile(`(?m)^\s*<listen_host>[^<]*</listen_host>\s*$`)

// StartClickHouse starts a ClickHouse server with a fresh data dir on free
// loopback ports and waits until /ping answers "Ok.".
func StartClickHouse(t testing.TB) *ClickHouse {
	t.Helper()
	bins := Need(t, "clickhouse-server", "clickhouse-server")
	client := Need(t, "clickhouse-client", "clickhouse-client")

	dir := t.TempDir()
	ports := clickHousePorts{tcp: FreePort(t), http: FreePort(t), interserver: FreePort(t)}
	if err := writeClickHouseConfig(dir, ports); err != nil {
		unavailable(t, "clickhouse config: %v", err)
	}
	c := &ClickHouse{Dir: dir, Client: client["clickhouse-client"], t: t, server: bins["clickhouse-server"]}
	c.Addr = "127.0.0.1:" + strconv.Itoa(ports.tcp)
	c.HTTPURL = "http://127.0.0.1:" + strconv.Itoa(ports.http)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last %d lines of the clickhouse error log:\n%s", logTailLines, fileTail(filepath.Join(dir, "log", "clickhouse-server.err.log"), logTailLines))
		}
	})
	c.Start()
	return c
}

// Start starts the server again after Stop, on the same dir and ports, and
// waits until it is ready. It does nothing while the server runs.
func (c *ClickHouse) Start() {
	c.t.Helper()
	if c.Proc != nil && !c.Proc.Exited() {
		return
	}
	c.Proc = Start(c.t, "clickhouse", []string{c.server, "--config-file=" + filepath.Join(c.Dir, "config.xml")}, WithDir(c.Dir))
	waitReady(c.t, c.Proc, c.HTTPURL+"/ping", func(status int, body []byte) bool {
		return status == http.StatusOK && strings.TrimSpace(string(body)) == "Ok."
	})
}

// Stop shuts the server down gracefully (see Process.Stop); the data stays.
func (c *ClickHouse) Stop() {
	if c.Proc != nil {
		c.Proc.Stop()
	}
}

// Query runs one SQL statement over the HTTP interface and returns the
// response body (TabSeparated unless the query says otherwise).
func (c *ClickHouse) Query(ctx context.Context, sql string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.HTTPURL+"/", strings.NewReader(sql))
	if err != nil {
		return "", fmt.Errorf("clickhouse query: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("clickhouse query: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("read clickhouse response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("clickhouse query %.80q: status %d: %s", sql, resp.StatusCode, bytes.TrimSpace(body))
	}
	return string(body), nil
}

type clickHousePorts struct{ tcp, http, interserver int }

// writeClickHouseConfig copies the packaged config.xml and users.xml into
// dir, drops their listen_host elements and adds config.d/override.xml that
// puts ports, data and logs into dir.
func writeClickHouseConfig(dir string, p clickHousePorts) error {
	const etc = "/etc/clickhouse-server"
	cfg, err := os.ReadFile(filepath.Join(etc, "config.xml"))
	if err != nil {
		return err
	}
	cfg = listenHost.ReplaceAll(cfg, nil)
	users, err := os.ReadFile(filepath.Join(etc, "users.xml"))
	if err != nil {
		return err
	}
	for _, sub := range []string{"config.d", "data", "tmp", "user_files", "format_schemas", "log"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return err
		}
	}
	override := fmt.Sprintf(`<?xml version="1.0"?>
<!-- Written by tidewatch testinfra. -->
<yandex>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>%d</tcp_port>
    <http_port>%d</http_port>
    <interserver_http_port>%d</interserver_http_port>
    <interserver_http_host>127.0.0.1</interserver_http_host>
    <https_port remove="1"/>
    <tcp_port_secure remove="1"/>
    <path>%[4]s/data/</path>
    <tmp_path>%[4]s/tmp/</tmp_path>
    <user_files_path>%[4]s/user_files/</user_files_path>
    <format_schema_path>%[4]s/format_schemas/</format_schema_path>
    <mark_cache_size>268435456</mark_cache_size>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <logger>
        <level>information</level>
        <log>%[4]s/log/clickhouse-server.log</log>
        <errorlog>%[4]s/log/clickhouse-server.err.log</errorlog>
        <size>100M</size>
        <count>1</count>
    </logger>
</yandex>
`, p.tcp, p.http, p.interserver, dir)
	files := map[string][]byte{
		"config.xml":            cfg,
		"users.xml":             users,
		"config.d/override.xml": []byte(override),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func fileTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(read %s: %v)", path, err)
	}
	return tail(b, n)
}
