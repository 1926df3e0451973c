package testinfra

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// ClickHouseClusterName is the remote_servers cluster that
// StartClickHouseCluster defines on every server.
const ClickHouseClusterName = "tidewatch"

// StartClickHouseCluster starts a ZooKeeper and shards×replicas ClickHouse
// servers (see StartClickHouse) that share one generated configuration:
// a remote_servers cluster named ClickHouseClusterName with
// internal_replication, the ZooKeeper for ReplicatedMergeTree and ON
// CLUSTER DDL, and the macros {shard} (1-based) and {replica} of each
// server. The servers are returned shard by shard: replica r of shard s is
// servers[s*replicas+r]. Each can be stopped and started on its own.
func StartClickHouseCluster(t testing.TB, shards, replicas int) []*ClickHouse {
	t.Helper()
	if shards < 1 || replicas < 1 {
		t.Fatalf("clickhouse cluster: need at least one shard and one replica, got %d×%d", shards, replicas)
	}
	bins := Need(t, "clickhouse-server", "clickhouse-server")
	client := Need(t, "clickhouse-client", "clickhouse-client")
	zk := StartZooKeeper(t)

	servers := make([]*ClickHouse, shards*replicas)
	ports := make([]clickHousePorts, len(servers))
	for i := range servers {
		ports[i] = clickHousePorts{tcp: FreePort(t), http: FreePort(t), interserver: FreePort(t)}
	}
	var rs strings.Builder
	for s := range shards {
		rs.WriteString("            <shard>\n                <internal_replication>true</internal_replication>\n")
		for r := range replicas {
			fmt.Fprintf(&rs, "                <replica><host>127.0.0.1</host><port>%d</port></replica>\n", ports[s*replicas+r].tcp)
		}
		rs.WriteString("            </shard>\n")
	}
	zkHost, zkPort, _ := strings.Cut(zk, ":")
	for i := range servers {
		dir := t.TempDir()
		if err := writeClickHouseConfig(dir, ports[i]); err != nil {
			unavailable(t, "clickhouse config: %v", err)
		}
		cluster := fmt.Sprintf(`<?xml version="1.0"?>
<!-- Written by tidewatch testinfra: server %d of a %d×%d cluster. -->
<yandex>
    <remote_servers>
        <%[4]s>
%[5]s        </%[4]s>
    </remote_servers>
    <zookeeper>
        <node><host>%[6]s</host><port>%[7]s</port></node>
        <session_timeout_ms>10000</session_timeout_ms>
    </zookeeper>
    <distributed_ddl>
        <path>/clickhouse/task_queue/ddl</path>
    </distributed_ddl>
    <macros>
        <shard>%[8]d</shard>
        <replica>replica%[9]d</replica>
    </macros>
</yandex>
`, i, shards, replicas, ClickHouseClusterName, rs.String(), zkHost, zkPort, i/replicas+1, i%replicas+1)
		if err := os.WriteFile(filepath.Join(dir, "config.d", "cluster.xml"), []byte(cluster), 0o644); err != nil {
			t.Fatalf("write clickhouse cluster config: %v", err)
		}
		c := &ClickHouse{Dir: dir, Client: client["clickhouse-client"], t: t, server: bins["clickhouse-server"]}
		c.Addr = "127.0.0.1:" + strconv.Itoa(ports[i].tcp)
		c.HTTPURL = "http://127.0.0.1:" + strconv.Itoa(ports[i].http)
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("last %d lines of the error log of clickhouse %s:\n%s", logTailLines, c.Addr, fileTail(filepath.Join(dir, "log", "clickhouse-server.err.log"), logTailLines))
			}
		})
		servers[i] = c
	}
	for _, c := range servers {
		c.Start()
	}
	return servers
}
