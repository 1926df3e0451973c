package discovery_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"

	"github.com/tidewatch/tidewatch/collector/discovery"
)

func TestShardValidate(t *testing.T) {
	tests := []struct {
		shard discovery.Shard
		err   string
	}{
		{discovery.Shard{}, ""},
		{discovery.Shard{Count: 1}, ""},
		{discovery.Shard{Count: 3, Index: 2}, ""},
		{discovery.Shard{Count: 3, Index: 3}, "collector.shard.index: must be below count (3), got 3"},
		{discovery.Shard{Count: -1}, "collector.shard.count: must not be negative"},
		{discovery.Shard{Index: 1}, "collector.shard.index: must be 0 without sharding"},
		{discovery.Shard{Count: 2, Index: -1}, "collector.shard.index: must not be negative"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%d/%d", tc.shard.Index, tc.shard.Count), func(t *testing.T) {
			err := tc.shard.Validate("collector.shard")
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("error %v, want %q", err, tc.err)
			}
		})
	}
}

// TestShardPartition: the shards of a count partition any set of
// addresses, and the user's relabeling runs first and is not modified.
func TestShardPartition(t *testing.T) {
	user := []*relabel.Config{{
		SourceLabels: []model.LabelName{"__address__"}, Regex: relabel.MustNewRegexp("(.*):80"),
		TargetLabel: "__address__", Replacement: "$1:8080", Action: relabel.Replace, Separator: ";",
		NameValidationScheme: model.UTF8Validation,
	}}
	if steps := (discovery.Shard{Count: 1}).Apply(user); len(steps) != 1 {
		t.Errorf("no sharding added %d steps", len(steps)-1)
	}
	for _, count := range []int{2, 3, 7} {
		owners := map[string][]int{}
		for i := range count {
			rcs := discovery.Shard{Count: count, Index: i}.Apply(user)
			if len(user) != 1 || len(rcs) != 3 {
				t.Fatalf("Apply: %d user steps, %d in all", len(user), len(rcs))
			}
			for n := range 300 {
				addr := fmt.Sprintf("10.0.%d.%d:80", n/256, n%256)
				lb := labels.NewBuilder(labels.FromStrings("__address__", addr))
				if relabel.ProcessBuilder(lb, rcs...) {
					if got := lb.Get("__address__"); !strings.HasSuffix(got, ":8080") {
						t.Fatalf("user relabeling did not run first: %s", got)
					}
					owners[addr] = append(owners[addr], i)
				}
			}
		}
		if len(owners) != 300 {
			t.Errorf("count %d: %d of 300 addresses have a shard", count, len(owners))
		}
		per := map[int]int{}
		for addr, o := range owners {
			if len(o) != 1 {
				t.Errorf("count %d: %s belongs to shards %v", count, addr, o)
			}
			per[o[0]]++
		}
		for i := range count {
			if per[i] == 0 {
				t.Errorf("count %d: shard %d is empty", count, i)
			}
		}
	}
}
