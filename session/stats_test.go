package session

import (
	"net/netip"
	"testing"
	"time"
)

func TestLatencyHistogram(t *testing.T) {
	var h LatencyHistogram
	if h.Quantile(0.5) != 0 {
		t.Error("empty histogram has a median")
	}
	// 100 samples: 1ms..100ms.
	for i := 1; i <= 100; i++ {
		h.Observe(time.Duration(i) * time.Millisecond)
	}
	if h.Count != 100 || h.Max != 100*time.Millisecond || h.Sum != 5050*time.Millisecond {
		t.Errorf("count %d max %v sum %v", h.Count, h.Max, h.Sum)
	}
	// Buckets: (500µs,1ms] 1, (1,2] 1, (2,5] 3, (5,10] 5, (10,20] 10, (20,50] 30, (50,100] 50.
	want := map[int]uint64{3: 1, 4: 1, 5: 3, 6: 5, 7: 10, 8: 30, 9: 50}
	for i, c := range h.Counts {
		if c != want[i] {
			t.Errorf("bucket %d (<= %v): %d; want %d", i, LatencyBounds[min(i, len(LatencyBounds)-1)], c, want[i])
		}
	}
	// The median falls in (20ms, 50ms]: 20 below it, 30 in it, rank 50
	// is at 30/30 of the bucket: 50ms.
	if q := h.Quantile(0.5); q != 50*time.Millisecond {
		t.Errorf("p50 %v; want 50ms", q)
	}
	if q := h.Quantile(0.99); q < 98*time.Millisecond || q > 100*time.Millisecond {
		t.Errorf("p99 %v; want 99ms", q)
	}
	h.Observe(time.Minute)
	if h.Counts[LatencyBuckets-1] != 1 || h.Quantile(1) != time.Minute {
		t.Errorf("a minute: last bucket %d, p100 %v", h.Counts[LatencyBuckets-1], h.Quantile(1))
	}
	h.Observe(-time.Second) // a clock step: counted as 0
	if h.Counts[0] != 1 {
		t.Errorf("negative sample not in the first bucket")
	}
	if n := testing.AllocsPerRun(100, func() { h.Observe(3 * time.Millisecond) }); n != 0 {
		t.Errorf("Observe allocates %v", n)
	}
}

// TestLateNAKers: the table keeps MaxLateNAKers entries, the heaviest
// NAKers stay, and a new one replaces the lightest, oldest one.
func TestLateNAKers(t *testing.T) {
	var tab [MaxLateNAKers]LateNAKer
	now := time.Unix(1000, 0)
	addr := func(i int) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), 7500)
	}
	// NAKer 1 NAKs 100 times; 2..20 once each, in turn.
	for range 100 {
		lateNAKer(&tab, addr(1), now)
	}
	for i := 2; i <= 20; i++ {
		now = now.Add(time.Second)
		lateNAKer(&tab, addr(i), now)
	}
	seen := map[netip.AddrPort]uint64{}
	for _, e := range tab {
		seen[e.Addr] = e.NAKs
	}
	if len(seen) != MaxLateNAKers || seen[addr(1)] != 100 || seen[addr(20)] != 1 {
		t.Errorf("table %v", tab)
	}
	for i := 14; i <= 20; i++ { // the latest 7 besides the heavy one
		if seen[addr(i)] != 1 {
			t.Errorf("NAKer %d missing: %v", i, tab)
		}
	}
	if n := testing.AllocsPerRun(100, func() { lateNAKer(&tab, addr(30), now) }); n != 0 {
		t.Errorf("lateNAKer allocates %v", n)
	}
}
