package clickhouse_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/internal/testinfra"
	"github.com/tidewatch/tidewatch/store/clickhouse"
)

// clusterConfig is a store configuration in cluster mode on the servers at
// addrs, with its own queue.
func clusterConfig(t *testing.T, db string, addrs ...string) clickhouse.Config {
	cfg := testConfig(&testinfra.ClickHouse{}, t.TempDir())
	cfg.Addresses = addrs
	cfg.Database = db
	cfg.Cluster = testinfra.ClickHouseClusterName
	cfg.Queue.Path = filepath.Join(t.TempDir(), "queue")
	return cfg
}

// countOn returns an integer SQL answer from one server.
func countOn(t *testing.T, srv *testinfra.ClickHouse, sql string) int {
	t.Helper()
	n, err := strconv.Atoi(query(t, srv, sql))
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// TestClusterShards runs two collectors into a cluster of two shards, each
// connected to its own server, as docs/clickhouse.md describes: both start
// at once (concurrent ON CLUSTER migrations), both shards receive samples,
// every series lives on exactly one shard, and each collector's queries
// return the complete data of both.
func TestClusterShards(t *testing.T) {
	t.Parallel()
	servers := testinfra.StartClickHouseCluster(t, 2, 1)
	const db = "tw_sharded"
	stores := make([]*clickhouse.Store, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range stores {
		wg.Go(func() {
			stores[i], errs[i] = clickhouse.Open(clusterConfig(t, db, servers[i].Addr), testLogger(t), nil)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open collector %d: %v", i, err)
		}
		defer stores[i].Close()
	}

	const rounds = 20
	base := time.Date(2023, 5, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	ins := []*ingester{newIngester("cluster_a", 100, base), newIngester("cluster_b", 100, base)}
	for r := 0; r < rounds; r++ {
		for i, in := range ins {
			if err := in.round(stores[i]); err != nil {
				t.Fatalf("collector %d, round %d: %v", i, r, err)
			}
		}
	}
	for _, st := range stores {
		flushWithin(t, st, time.Minute)
	}

	var total int
	for i, srv := range servers {
		n := countOn(t, srv, "SELECT count() FROM "+db+".samples_local")
		if n == 0 {
			t.Errorf("shard %d received no samples", i+1)
		}
		total += n
		if got := countOn(t, srv, "SELECT uniqExact(fingerprint) FROM "+db+".series_local"); got == 0 {
			t.Errorf("shard %d received no series", i+1)
		}
	}
	if want := 2 * 100 * rounds; total != want {
		t.Errorf("the shards hold %d samples, want %d", total, want)
	}
	shared := countOn(t, servers[0], "SELECT count() FROM "+db+".samples_local WHERE fingerprint GLOBAL IN (SELECT fingerprint FROM remote('"+servers[1].Addr+"', "+db+".samples_local))")
	if shared != 0 {
		t.Errorf("%d samples of shard 1 belong to series that shard 2 also holds; sharding is not by series", shared)
	}

	for i, st := range stores {
		t.Run(fmt.Sprintf("collector %d reads both", i), func(t *testing.T) {
			for _, in := range ins {
				checkExactly(t, st, in, rounds)
			}
			q, err := st.Querier(base, base+rounds*1000)
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			names, _, err := q.LabelValues(context.Background(), "__name__", nil)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(names) != "[cluster_a cluster_b]" {
				t.Errorf("metric names %v, want [cluster_a cluster_b]", names)
			}
		})
	}
	// Large selections read the samples through a GLOBAL IN subquery on
	// the Distributed series table instead of a literal fingerprint list.
	stores[0].SetLiteralFingerprints(0)
	t.Run("subquery selection", func(t *testing.T) {
		checkExactly(t, stores[0], ins[1], rounds)
	})
}

// TestClusterReplicaDown runs one shard of two replicas behind one store
// that lists both addresses: with either replica stopped, writes and reads
// keep working, and the stopped replica catches up when it returns.
func TestClusterReplicaDown(t *testing.T) {
	t.Parallel()
	servers := testinfra.StartClickHouseCluster(t, 1, 2)
	const db = "tw_replicated"
	st := openStore(t, clusterConfig(t, db, servers[0].Addr, servers[1].Addr))
	defer st.Close()

	base := time.Date(2023, 5, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	in := newIngester("replicated", 50, base)
	ingest := func(rounds int) {
		t.Helper()
		for range rounds {
			if err := in.round(st); err != nil {
				t.Fatal(err)
			}
		}
		flushWithin(t, st, time.Minute)
	}
	// replicated waits until srv's local samples table holds n rows.
	replicated := func(srv *testinfra.ClickHouse, n int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			out, err := srv.Query(ctx, "SELECT count() FROM "+db+".samples_local")
			if err == nil && out == strconv.Itoa(n)+"\n" {
				return
			}
			select {
			case <-ctx.Done():
				t.Fatalf("replica %s: want %d samples, last answer %q (err %v)", srv.Addr, n, out, err)
			case <-tick.C:
			}
		}
	}

	ingest(10)
	checkExactly(t, st, in, 10)
	for _, srv := range servers {
		replicated(srv, 50*10)
	}
	for i, down := range servers {
		up := servers[1-i]
		t.Run(fmt.Sprintf("replica %d down", i+1), func(t *testing.T) {
			down.Stop()
			ingest(10)
			checkExactly(t, st, in, in.committed())
			replicated(up, 50*in.committed()+5*3*i)
			// A collector (re)starting now finds the schema in place and
			// runs no ON CLUSTER DDL, which would wait for the stopped
			// replica: it writes and reads at once.
			other := openStore(t, clusterConfig(t, db, servers[0].Addr, servers[1].Addr))
			oin := newIngester(fmt.Sprintf("restarted_%d", i+1), 5, base)
			for range 3 {
				if err := oin.round(other); err != nil {
					t.Fatal(err)
				}
			}
			flushWithin(t, other, 30*time.Second)
			checkExactly(t, other, oin, 3)
			other.Close()
			replicated(up, 50*in.committed()+5*3*(i+1))
			down.Start()
			replicated(down, 50*in.committed()+5*3*(i+1))
		})
	}
}
