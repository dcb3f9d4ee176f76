package nak

import (
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
)

// stream simulates a receiver on a lossy stream: a packet every 100µs, every
// lossEvery-th one lost; the source NCFs each NAK at once and the repair
// arrives repairAfter packets after the gap. With no loss of NCFs or
// repairs, the tracker holds about repairAfter/lossEvery sequences.
type stream struct {
	tr          *Tracker
	now         time.Time
	seq         uint64
	lossEvery   uint64
	repairAfter uint64
	naks        []uint64
	lost        []Lost
}

func newStream(cfg Config, lossEvery, repairAfter uint64) *stream {
	return &stream{
		tr:          New(cfg, rand.New(rand.NewPCG(1, 1))),
		now:         t0,
		seq:         1 << 20,
		lossEvery:   lossEvery,
		repairAfter: repairAfter,
		naks:        make([]uint64, 0, 1024),
		lost:        make([]Lost, 0, 1024),
	}
}

// step receives one packet and runs the timers.
func (s *stream) step() {
	s.now = s.now.Add(100 * time.Microsecond)
	s.seq++
	if s.seq%s.lossEvery == 0 {
		s.tr.Missing(s.now, s.seq, s.seq)
	}
	s.tr.Repaired(s.seq - s.repairAfter)
	s.naks, s.lost = s.tr.Advance(s.now, s.naks[:0], s.lost[:0])
	for _, n := range s.naks {
		s.tr.NCF(s.now, n)
	}
	_ = s.tr.NextDeadline()
}

func wantNoAllocs(t *testing.T, name string, warm int, f func()) {
	t.Helper()
	for range warm {
		f()
	}
	if n := testing.AllocsPerRun(1000, f); n != 0 {
		t.Errorf("%s: %v allocs/op in steady state, want 0", name, n)
	}
}

func TestAllocs(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage instrumentation allocates")
	}
	t.Run("stream", func(t *testing.T) {
		s := newStream(Config{}, 10, 1000) // 10% loss, ~100 tracked
		wantNoAllocs(t, "stream", 20000, s.step)
	})
	t.Run("heavy loss", func(t *testing.T) {
		s := newStream(Config{}, 2, 5000) // 50% loss, ~2500 tracked
		wantNoAllocs(t, "heavy loss", 50000, s.step)
	})
	t.Run("retries and give-ups", func(t *testing.T) {
		// Repairs never come: everything times out and is given up.
		s := newStream(Config{NCFRetries: 2, DataRetries: 2}, 3, 1<<40)
		wantNoAllocs(t, "give-ups", 50000, s.step)
	})
	t.Run("overflow", func(t *testing.T) {
		// More gaps than MaxPending: steady eviction and Overflow reports.
		s := newStream(Config{MaxPending: 64}, 2, 1<<40)
		wantNoAllocs(t, "overflow", 5000, s.step)
	})
	t.Run("out of order", func(t *testing.T) {
		tr := New(Config{}, rand.New(rand.NewPCG(1, 1)))
		rng := rand.New(rand.NewPCG(2, 2))
		now := t0
		var naks []uint64
		var lost []Lost
		for s := uint64(0); s < 4096; s += 2 {
			tr.Missing(now, s, s)
		}
		f := func() {
			now = now.Add(time.Millisecond)
			s := uint64(rng.IntN(4096))
			tr.Repaired(s)
			tr.Missing(now, s, s+uint64(rng.IntN(3)))
			if tr.Len() > 3000 {
				tr.Forget(uint64(rng.IntN(4096)))
			}
			naks, lost = tr.Advance(now, naks[:0], lost[:0])
		}
		wantNoAllocs(t, "out of order", 20000, f)
	})
	t.Run("huge gap", func(t *testing.T) {
		tr := New(Config{MaxPending: 1024}, rand.New(rand.NewPCG(1, 1)))
		lost := make([]Lost, 0, 8)
		var first uint64
		f := func() {
			tr.Missing(t0, first, first+1<<40)
			_, lost = tr.Advance(t0, nil, lost[:0])
			tr.Reset()
			first += 1 << 41
		}
		wantNoAllocs(t, "huge gap", 10, f)
	})
}

func BenchmarkStream(b *testing.B) {
	for _, bc := range []struct {
		name                   string
		lossEvery, repairAfter uint64
	}{
		{"loss=1%/tracked=10", 100, 1000},
		{"loss=10%/tracked=100", 10, 1000},
		{"loss=50%/tracked=2500", 2, 5000},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := newStream(Config{}, bc.lossEvery, bc.repairAfter)
			for range 100000 {
				s.step()
			}
			b.ReportAllocs()
			for b.Loop() {
				s.step()
			}
		})
	}
}

func BenchmarkMissingRepaired(b *testing.B) {
	// One new single-sequence gap and one repair per op, 1000 tracked.
	tr := New(Config{}, rand.New(rand.NewPCG(1, 1)))
	var seq uint64
	for ; seq < 1000; seq++ {
		tr.Missing(t0, seq, seq)
	}
	b.ReportAllocs()
	for b.Loop() {
		tr.Missing(t0, seq, seq)
		tr.Repaired(seq - 1000)
		seq++
	}
}

func BenchmarkNCF(b *testing.B) {
	tr := New(Config{}, rand.New(rand.NewPCG(1, 1)))
	tr.Missing(t0, 0, 1023)
	var i uint64
	b.ReportAllocs()
	for b.Loop() {
		tr.NCF(t0, i%1024)
		i += 7
	}
}

func BenchmarkAdvanceIdle(b *testing.B) {
	tr := New(Config{}, rand.New(rand.NewPCG(1, 1)))
	tr.Missing(t0, 0, 1023)
	var naks []uint64
	var lost []Lost
	b.ReportAllocs()
	for b.Loop() {
		naks, lost = tr.Advance(t0, naks[:0], lost[:0])
	}
}

func BenchmarkAdvanceFire(b *testing.B) {
	// n sequences NAKed by one Advance: the O(tracked) pass.
	for _, n := range []int{64, 1024, 65536} {
		b.Run("n="+strconv.Itoa(n), func(b *testing.B) {
			tr := New(Config{}, rand.New(rand.NewPCG(1, 1)))
			naks := make([]uint64, 0, n)
			var lost []Lost
			now := t0
			fire := func() {
				tr.Missing(now, 0, uint64(n-1))
				now = now.Add(time.Second)
				naks, lost = tr.Advance(now, naks[:0], lost[:0])
				tr.Reset()
			}
			fire() // warm up: grow the arrays once
			b.ReportAllocs()
			for b.Loop() {
				fire()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/seq")
		})
	}
}

func BenchmarkHugeGap(b *testing.B) {
	// A 2^40 gap with the default MaxPending: 65536 tracked, the rest one
	// Overflow range.
	tr := New(Config{}, rand.New(rand.NewPCG(1, 1)))
	lost := make([]Lost, 0, 4)
	gap := func() {
		tr.Missing(t0, 0, 1<<40)
		_, lost = tr.Advance(t0, nil, lost[:0])
		tr.Reset()
	}
	gap() // warm up
	b.ReportAllocs()
	for b.Loop() {
		gap()
	}
}

func BenchmarkOutOfOrderMissing(b *testing.B) {
	// Gaps reported behind the lead: insertion into the middle of 4096.
	tr := New(Config{}, rand.New(rand.NewPCG(1, 1)))
	for s := uint64(0); s < 8192; s += 2 {
		tr.Missing(t0, s, s)
	}
	rng := rand.New(rand.NewPCG(2, 2))
	b.ReportAllocs()
	for b.Loop() {
		s := uint64(rng.IntN(4096))*2 + 1
		tr.Missing(t0, s, s)
		tr.Repaired(s)
	}
}
