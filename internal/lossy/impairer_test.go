package lossy

import (
	"math"
	"slices"
	"testing"
)

// decisions runs n datagrams through a fresh Impairer and records the
// actions, with Due slots encoded as 100+slot.
func decisions(cfg Config, n int) []int {
	im := NewImpairer(cfg)
	var out []int
	for range n {
		d := im.Decide(nil)
		out = append(out, int(d.Action))
		for slot, ok := im.Due(); ok; slot, ok = im.Due() {
			out = append(out, 100+slot)
		}
	}
	return out
}

func TestImpairerDeterministic(t *testing.T) {
	cfg := Config{Loss: 0.1, BurstLoss: 0.01, Reorder: 0.1, Duplicate: 0.05, Seed: 42}
	a, b := decisions(cfg, 5000), decisions(cfg, 5000)
	if !slices.Equal(a, b) {
		t.Fatal("same Config and input gave different decisions")
	}
	cfg.Seed = 43
	if slices.Equal(a, decisions(cfg, 5000)) {
		t.Fatal("different seeds gave identical decisions")
	}
}

// A zero probability draws no random number, so listing it explicitly, or
// adding an impairment that never fires, leaves the other decisions alone.
func TestImpairerZeroProbabilityConsumesNothing(t *testing.T) {
	a := decisions(Config{Loss: 0.2, Seed: 1}, 2000)
	b := decisions(Config{Loss: 0.2, Duplicate: 0, Reorder: 0, BurstLen: 5, Seed: 1}, 2000)
	if !slices.Equal(a, b) {
		t.Fatal("zero-probability fields changed the loss decisions")
	}
}

func TestImpairerLossRate(t *testing.T) {
	const n = 100_000
	for _, p := range []float64{0, 0.01, 0.05, 0.3, 1} {
		im := NewImpairer(Config{Loss: p, Seed: 7})
		for range n {
			im.Decide(nil)
		}
		st := im.Stats()
		if st.Datagrams != n {
			t.Errorf("p=%v: Datagrams = %d, want %d", p, st.Datagrams, n)
		}
		// Binomial: mean np, sd sqrt(np(1-p)); allow 5 sd.
		mean, sd := n*p, math.Sqrt(n*p*(1-p))
		if d := math.Abs(float64(st.Dropped) - mean); d > 5*sd+0.5 {
			t.Errorf("p=%v: dropped %d of %d, want about %.0f ± %.0f", p, st.Dropped, n, mean, 5*sd)
		}
	}
}

func TestImpairerBursts(t *testing.T) {
	im := NewImpairer(Config{BurstLoss: 0.01, BurstLen: 8, Seed: 3})
	run, runs := 0, 0
	check := func() {
		if run != 0 && run%8 != 0 {
			// Back-to-back bursts can merge, but only whole bursts drop.
			t.Errorf("drop run of %d, want a multiple of 8", run)
		}
		if run != 0 {
			runs++
		}
		run = 0
	}
	for range 50_000 {
		if im.Decide(nil).Action == Drop {
			run++
		} else {
			check()
		}
	}
	check()
	st := im.Stats()
	if st.Dropped != st.BurstDrops || runs == 0 {
		t.Errorf("stats %+v, runs %d", st, runs)
	}
	// A burst starts at 1% of the datagrams not already in a burst:
	// B = 0.01 * (50000 - 7B), so B ≈ 467.
	if got := float64(st.BurstDrops) / 8; got < 370 || got > 570 {
		t.Errorf("%v bursts in 50000 datagrams, want about 467", got)
	}
}

func TestImpairerDefaultBurstLen(t *testing.T) {
	im := NewImpairer(Config{BurstLoss: 1})
	for range 25 {
		im.Decide(nil)
	}
	if st := im.Stats(); st.Dropped != 25 {
		t.Fatalf("BurstLoss=1 dropped %d of 25", st.Dropped)
	}
	im = NewImpairer(Config{BurstLoss: 0.000001, Seed: 1})
	if im.burstLen != DefaultBurstLen {
		t.Fatalf("burstLen = %d, want %d", im.burstLen, DefaultBurstLen)
	}
}

func TestImpairerFilter(t *testing.T) {
	// Only datagrams starting with 'd' are impaired; with Loss 1 all of
	// those drop and none of the others.
	im := NewImpairer(Config{Loss: 1, Filter: func(b []byte) bool { return len(b) > 0 && b[0] == 'd' }})
	for i := range 100 {
		b := []byte("c")
		if i%2 == 0 {
			b = []byte("d")
		}
		got := im.Decide(b).Action
		want := Deliver
		if i%2 == 0 {
			want = Drop
		}
		if got != want {
			t.Fatalf("datagram %d (%q): %v, want %v", i, b, got, want)
		}
	}
}

// With Reorder 1, every datagram is held while a slot is free; once all
// MaxHeld are used, datagrams are delivered and each delivery counts down
// the held ones, which come back after 1 to 3 deliveries, oldest first.
func TestImpairerReorder(t *testing.T) {
	im := NewImpairer(Config{Reorder: 1, Seed: 5})
	held := map[int]int{} // slot -> datagram index
	var out []int
	deliveriesSince := map[int]int{} // datagram index -> deliveries after it was held
	for i := range 1000 {
		switch d := im.Decide(nil); d.Action {
		case Hold:
			if _, busy := held[d.Slot]; busy {
				t.Fatalf("slot %d handed out twice", d.Slot)
			}
			held[d.Slot] = i
			deliveriesSince[i] = 0
		case Deliver:
			out = append(out, i)
			for _, j := range held {
				deliveriesSince[j]++
			}
		default:
			t.Fatalf("datagram %d: %v", i, d.Action)
		}
		for slot, ok := im.Due(); ok; slot, ok = im.Due() {
			j, busy := held[slot]
			if !busy {
				t.Fatalf("Due returned free slot %d", slot)
			}
			if n := deliveriesSince[j]; n < 1 || n > 3 {
				t.Errorf("datagram %d released after %d deliveries, want 1..3", j, n)
			}
			delete(held, slot)
			out = append(out, j)
		}
		if im.Held() != len(held) {
			t.Fatalf("Held() = %d, want %d", im.Held(), len(held))
		}
	}
	for slot, ok := im.Flush(); ok; slot, ok = im.Flush() {
		out = append(out, held[slot])
		delete(held, slot)
	}
	if len(held) != 0 || im.Held() != 0 {
		t.Fatalf("after Flush, %d still held", im.Held())
	}
	sorted := slices.Sorted(slices.Values(out))
	for i, v := range sorted {
		if v != i {
			t.Fatalf("output is not a permutation of the input: %v", sorted)
		}
	}
	if slices.IsSorted(out) {
		t.Fatal("Reorder=1 did not reorder anything")
	}
	if st := im.Stats(); st.Reordered == 0 || st.Reordered > 1000 {
		t.Errorf("Reordered = %d", st.Reordered)
	}
}

func TestImpairerDuplicate(t *testing.T) {
	im := NewImpairer(Config{Duplicate: 0.5, Seed: 11})
	dups := 0
	for range 10_000 {
		if im.Decide(nil).Action == Duplicate {
			dups++
		}
	}
	if st := im.Stats(); st.Duplicated != uint64(dups) || dups < 4700 || dups > 5300 {
		t.Errorf("%d duplicates of 10000 at p=0.5, stats %+v", dups, st)
	}
}

func TestNewImpairerPanicsOnInvalid(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("NewImpairer(Loss: 2) did not panic")
		}
	}()
	NewImpairer(Config{Loss: 2})
}

func TestImpairerAllocs(t *testing.T) {
	im := NewImpairer(Config{Loss: 0.1, BurstLoss: 0.01, Reorder: 0.1, Duplicate: 0.1, Seed: 1})
	b := []byte("x")
	allocs := testing.AllocsPerRun(1000, func() {
		im.Decide(b)
		for _, ok := im.Due(); ok; _, ok = im.Due() {
		}
	})
	if allocs != 0 {
		t.Errorf("Decide+Due: %v allocs per datagram, want 0", allocs)
	}
}
