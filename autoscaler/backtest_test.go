package autoscaler

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestBacktestLoadHoldsHistory: stored history becomes a per-second load,
// each point held until the next, over exactly [From, To).
func TestBacktestLoadHoldsHistory(t *testing.T) {
	start := time.Date(1995, 7, 1, 0, 0, 0, 0, time.UTC)
	pts := []Point{{start.Add(5 * time.Second), 1}, {start.Add(20 * time.Second), 2}, {start.Add(35 * time.Second), math.NaN()}, {start.Add(50 * time.Second), 4}}
	bt := Backtest{Metrics: [][]Point{pts}, From: start, To: start.Add(time.Minute)}
	load, at, err := bt.Load()
	if err != nil || !at.Equal(start) || len(load) != 60 {
		t.Fatalf("load of %d seconds from %v: %v", len(load), at, err)
	}
	for s, want := range map[int]float64{0: 1, 19: 1, 20: 2, 34: 2, 35: 0, 49: 0, 50: 4, 59: 4} {
		if load[s] != want {
			t.Errorf("second %d = %v, want %v", s, load[s], want)
		}
	}
	if _, _, err := (&Backtest{}).Load(); err == nil {
		t.Error("no history: no error")
	}
}

func TestReadLoadCSVSpeedup(t *testing.T) {
	start := time.Unix(1000, 0)
	pts, err := ReadLoadCSV(strings.NewReader("minute,requests\n0,1\n1,2\n2,3\n"), start, 60)
	if err != nil {
		t.Fatal(err)
	}
	if !pts[2].T.Equal(start.Add(2*time.Second)) || pts[2].V != 3 {
		t.Errorf("point 2 = %+v, want 2 s after start with speedup 60", pts[2])
	}
	for _, bad := range []string{"minute\n0\n", "minute,v\nx,1\n", "minute,v\n0,y\n", "minute,v\n"} {
		if _, err := ReadLoadCSV(strings.NewReader(bad), start, 1); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestReadLoadTrace: a minute trace is value/60 rps for 60 seconds a row;
// other traces hold each row's value until the next row (NaN is no load)
// and the last row for its second; rows out of order are refused.
func TestReadLoadTrace(t *testing.T) {
	load, start, err := ReadLoadTrace(strings.NewReader("minute,requests\n0,60\n1,120\n"))
	if err != nil || len(load) != 120 || load[0] != 1 || load[59] != 1 || load[60] != 2 || !start.Equal(time.Unix(0, 0)) {
		t.Fatalf("minutes: %d seconds, %v…, start %v, %v", len(load), load[:1], start, err)
	}
	load, start, err = ReadLoadTrace(strings.NewReader("time,rps\n100,5\n103,NaN\n104,7\n"))
	if err != nil || !start.Equal(time.Unix(100, 0)) {
		t.Fatal(start, err)
	}
	if want := []float64{5, 5, 5, 0, 7}; !slices.Equal(load, want) {
		t.Errorf("seconds: %v, want %v", load, want)
	}
	if _, _, err := ReadLoadTrace(strings.NewReader("time,rps\n100,5\n90,1\n")); err == nil || !strings.Contains(err.Error(), "line 3") || !strings.Contains(err.Error(), "time order") {
		t.Errorf("out of order: %v", err)
	}
	if _, _, err := ReadLoadTrace(strings.NewReader("time,rps\n")); err == nil || !strings.Contains(err.Error(), "no rows") {
		t.Errorf("empty: %v", err)
	}
}
