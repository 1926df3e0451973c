package testinfra

import (
	"strings"
	"testing"
)

// TestClickHouseCluster: two shards of one replica see the same cluster
// definition, each its own macros, and a replicated table created ON
// CLUSTER through ZooKeeper exists on both.
func TestClickHouseCluster(t *testing.T) {
	t.Parallel()
	servers := StartClickHouseCluster(t, 2, 1)
	ctx := t.Context()
	ddl := "CREATE TABLE default.probe ON CLUSTER " + ClickHouseClusterName +
		" (x UInt8) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/probe', '{replica}') ORDER BY x"
	if _, err := servers[0].Query(ctx, ddl); err != nil {
		t.Fatal(err)
	}
	for i, c := range servers {
		out, err := c.Query(ctx, "SELECT count() FROM system.clusters WHERE cluster = '"+ClickHouseClusterName+"'")
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(out); got != "2" {
			t.Errorf("server %d: %s hosts in cluster %s, want 2", i, got, ClickHouseClusterName)
		}
		out, err = c.Query(ctx, "SELECT zookeeper_path, replica_name FROM system.replicas WHERE database = 'default' AND table = 'probe'")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := strings.TrimSpace(out), []string{"/clickhouse/tables/1/probe\treplica1", "/clickhouse/tables/2/probe\treplica1"}[i]; got != want {
			t.Errorf("server %d: replicated probe table: got %q, want %q", i, got, want)
		}
	}
}
