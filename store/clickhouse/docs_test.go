package clickhouse_test

import (
	"context"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/storage"

	"github.com/tidewatch/tidewatch/internal/testinfra"
)

// TestDocsSQL runs every SQL example of docs/clickhouse.md against the
// parity data on the test server, so the documented queries stay valid.
func TestDocsSQL(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../docs/clickhouse.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```sql\n(.*?)```").FindAllSubmatch(doc, -1)
	if len(blocks) < 4 {
		t.Fatalf("found %d SQL examples, want at least 4", len(blocks))
	}
	srv := testinfra.StartClickHouse(t)
	cfg := testConfig(srv, t.TempDir())
	st := openStore(t, cfg)
	defer st.Close()
	app := st.AppenderV2(context.Background())
	for _, s := range paritySeries() {
		for _, p := range s.samples {
			if _, err := app.Append(0, s.ls, 0, p.T, p.F, nil, nil, storage.AppendV2Options{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	flushWithin(t, st, time.Minute)
	from, to := parityBase/1000, parityBase/1000+5400
	r := strings.NewReplacer(
		"tidewatch.", cfg.Database+".",
		"$__fromTime", "toDateTime("+strconv.FormatInt(from, 10)+")",
		"$__toTime", "toDateTime("+strconv.FormatInt(to, 10)+")",
	)
	for i, b := range blocks {
		sql := r.Replace(string(b[1]))
		out, err := srv.Query(context.Background(), sql)
		if err != nil {
			t.Errorf("example %d: %v\n%s", i+1, err, sql)
			continue
		}
		t.Logf("example %d: %d result lines", i+1, strings.Count(out, "\n"))
	}
}
