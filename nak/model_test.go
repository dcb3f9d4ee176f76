package nak

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// rset is a deliberately naive set of sequences for the model: a sorted list
// of disjoint, non-adjacent inclusive spans, rebuilt on every change. It is
// independent of the tracker's own spanSet.
type rset []span

func (r rset) add(first, last uint64) rset {
	out := append(slices.Clone(r), span{first, last})
	slices.SortFunc(out, func(a, b span) int {
		switch {
		case a.first < b.first:
			return -1
		case a.first > b.first:
			return 1
		}
		return 0
	})
	var merged rset
	for _, s := range out {
		if n := len(merged); n > 0 && (merged[n-1].last == math.MaxUint64 || s.first <= merged[n-1].last+1) {
			merged[n-1].last = max(merged[n-1].last, s.last)
			continue
		}
		merged = append(merged, s)
	}
	return merged
}

func (r rset) remove(first, last uint64) rset {
	var out rset
	for _, s := range r {
		if s.last < first || s.first > last {
			out = append(out, s)
			continue
		}
		if s.first < first {
			out = append(out, span{s.first, first - 1})
		}
		if s.last > last {
			out = append(out, span{last + 1, s.last})
		}
	}
	return out
}

func (r rset) minus(o rset) rset {
	for _, s := range o {
		r = r.remove(s.first, s.last)
	}
	return r
}

func (r rset) union(o rset) rset {
	for _, s := range o {
		r = r.add(s.first, s.last)
	}
	return r
}

func (r rset) has(seq uint64) bool {
	for _, s := range r {
		if s.first <= seq && seq <= s.last {
			return true
		}
	}
	return false
}

func (r rset) covers(first, last uint64) bool {
	return len(rset{{first, last}}.minus(r)) == 0
}

// checkTimers checks the heap order, the bound on stale timers, and that
// every live entry is covered by a timer with its deadline (timers.go).
func (c *checker) checkTimers() {
	tr := c.tr
	h := tr.timers
	for i := 1; i < len(h); i++ {
		if h[(i-1)/2].due > h[i].due {
			c.fatalf("timer heap out of order at %d", i)
		}
	}
	if len(h) > 2*tr.Config().MaxPending+tr.timerSlack {
		c.fatalf("%d timers for MaxPending %d", len(h), tr.Config().MaxPending)
	}
	if tr.lastPush >= len(h) {
		c.fatalf("lastPush %d beyond %d timers", tr.lastPush, len(h))
	}
	byDue := make(map[int64][]timer)
	for _, tm := range h {
		if tm.last < tm.first {
			c.fatalf("bad timer %+v", tm)
		}
		byDue[tm.due] = append(byDue[tm.due], tm)
	}
	for _, e := range tr.buf[tr.head:] {
		if e.state == None {
			continue
		}
		ok := false
		for _, tm := range byDue[e.due] {
			if tm.first <= e.seq && e.seq <= tm.last {
				ok = true
				break
			}
		}
		if !ok {
			c.fatalf("entry %+v has no timer", e)
		}
	}
}

// wantNextDeadline checks NextDeadline against the entries and the
// unreported losses.
func (c *checker) wantNextDeadline() {
	tr := c.tr
	want := int64(never)
	for _, e := range tr.buf[tr.head:] {
		if e.state != None && e.due < want {
			want = e.due
		}
	}
	if len(tr.pending.s) > 0 && tr.pendingSince < want {
		want = tr.pendingSince
	}
	got := tr.NextDeadline()
	if want == never {
		if !got.IsZero() {
			c.fatalf("NextDeadline %v, want none", got.Sub(t0))
		}
		return
	}
	if w := tr.epoch.Add(time.Duration(want)); !got.Equal(w) {
		c.fatalf("NextDeadline %v, want %v", got.Sub(t0), w.Sub(t0))
	}
}

// checker applies operations to a Tracker and to a model of which sequences
// are "open" (reported missing and not yet repaired, forgotten or reported
// lost), and checks the tracker's invariants after each one:
//
//   - open = tracked ∪ (given up, not yet reported), the two disjoint: a
//     sequence reported missing ends exactly once, as Repaired, Forgotten
//     or Lost, and is never silently dropped;
//   - NAKs are increasing and open; Lost ranges are increasing, maximal and
//     open; nothing is due in the past after Advance;
//   - memory stays within its bounds; the cached deadline is right.
//
// The only relaxation: once the tracker had to merge unreported Overflow
// ranges (coarse > 0, documented), a Lost may cover sequences not open.
type checker struct {
	tb   testing.TB
	tr   *Tracker
	now  time.Time
	open rset

	naks []uint64
	lost []Lost

	nakCount  uint64
	lostCount uint64
}

func newChecker(tb testing.TB, cfg Config, seed uint64) *checker {
	return &checker{tb: tb, tr: New(cfg, rand.New(rand.NewPCG(seed, 0x5eed))), now: t0}
}

func (c *checker) fatalf(format string, args ...any) {
	c.tb.Helper()
	c.tb.Fatalf("at %v: "+format, append([]any{c.now.Sub(t0)}, args...)...)
}

func (c *checker) missing(first, last uint64) {
	c.tr.Missing(c.now, first, last)
	if first <= last {
		c.open = c.open.add(first, last)
	}
	c.check()
}

func (c *checker) repaired(seq uint64) {
	c.tr.Repaired(seq)
	c.open = c.open.remove(seq, seq)
	if c.tr.Tracking(seq) {
		c.fatalf("Repaired(%d): still tracked", seq)
	}
	c.check()
}

func (c *checker) ncf(seq uint64) {
	was := c.tr.Tracking(seq)
	if got := c.tr.NCF(c.now, seq); got != was {
		c.fatalf("NCF(%d) = %v, tracked %v", seq, got, was)
	}
	if was && c.tr.State(seq) != WaitData {
		c.fatalf("after NCF(%d): state %v", seq, c.tr.State(seq))
	}
	c.check()
}

func (c *checker) forget(before uint64) {
	c.tr.Forget(before)
	if before > 0 {
		c.open = c.open.remove(0, before-1)
	}
	c.check()
}

func (c *checker) reset() {
	c.tr.Reset()
	c.open = nil
	c.check()
}

func (c *checker) advance(now time.Time) {
	c.tb.Helper()
	c.now = now
	c.naks, c.lost = c.tr.Advance(now, c.naks[:0], c.lost[:0])
	for i, s := range c.naks {
		if i > 0 && s <= c.naks[i-1] {
			c.fatalf("NAKs not increasing: %v", c.naks)
		}
		if !c.open.has(s) {
			c.fatalf("NAK for %d, which is not open", s)
		}
		if st := c.tr.State(s); st != WaitNCF {
			c.fatalf("NAKed %d is in %v, want WaitNCF", s, st)
		}
	}
	c.nakCount += uint64(len(c.naks))
	for i, l := range c.lost {
		if l.Last < l.First || l.Reason < NCFRetriesExceeded || l.Reason > Overflow {
			c.fatalf("bad Lost %v", l)
		}
		if i > 0 {
			p := c.lost[i-1]
			if l.First <= p.Last {
				c.fatalf("Lost not increasing: %v", c.lost)
			}
			if l.First == p.Last+1 && l.Reason == p.Reason {
				c.fatalf("Lost not merged: %v", c.lost)
			}
		}
		if c.tr.coarse == 0 && !c.open.covers(l.First, l.Last) {
			c.fatalf("Lost %v is not open (open %v)", l, c.open)
		}
		if l.Last-l.First < 1<<16 {
			for s := l.First; ; s++ {
				if c.tr.Tracking(s) {
					c.fatalf("Lost %d is still tracked", s)
				}
				if s == l.Last {
					break
				}
			}
		}
		c.open = c.open.remove(l.First, l.Last)
		c.lostCount += l.Count()
	}
	if len(c.tr.pending.s) != 0 {
		c.fatalf("Overflow losses left unreported after Advance")
	}
	c.wantNextDeadline()
	d := c.tr.NextDeadline()
	if !d.IsZero() && !d.After(now) {
		c.fatalf("after Advance, NextDeadline %v is not in the future", d.Sub(t0))
	}
	if d.IsZero() != (c.tr.Len() == 0) {
		c.fatalf("NextDeadline %v with %d tracked", d, c.tr.Len())
	}
	c.check()
}

// advanceToDeadline moves to NextDeadline (if any) and runs Advance.
func (c *checker) advanceToDeadline() {
	c.wantNextDeadline()
	if d := c.tr.NextDeadline(); !d.IsZero() {
		if d.Before(c.now) {
			d = c.now // losses given up at an earlier time
		}
		c.advance(d)
	}
}

// drain runs the timers until nothing is tracked, which must happen within
// the retry limits, and checks that every open sequence ended.
func (c *checker) drain() {
	cfg := c.tr.Config()
	limit := 4*cfg.MaxPending*(cfg.NCFRetries+cfg.DataRetries+2) + 10
	for i := 0; c.tr.Len() > 0 || len(c.tr.pending.s) > 0; i++ {
		if i > limit {
			c.fatalf("tracker did not drain in %d steps; %d left", limit, c.tr.Len())
		}
		c.advanceToDeadline()
	}
	if len(c.open) != 0 {
		c.fatalf("drained, but still open: %v", c.open)
	}
}

func (c *checker) check() {
	c.tb.Helper()
	tr := c.tr
	cfg := tr.Config()
	var tracked rset
	live := 0
	ents := tr.buf[tr.head:]
	for i, e := range ents {
		if i > 0 && e.seq <= ents[i-1].seq {
			c.fatalf("entries not strictly increasing at %d", i)
		}
		if e.state == None {
			continue
		}
		if e.state > WaitData {
			c.fatalf("entry %d in state %v", e.seq, e.state)
		}
		if int(e.ncf) >= cfg.NCFRetries || int(e.data) >= cfg.DataRetries {
			c.fatalf("entry %d kept past its retry limit: %+v", e.seq, e)
		}
		live++
		if n := len(tracked); n > 0 && tracked[n-1].last+1 == e.seq {
			tracked[n-1].last = e.seq
		} else {
			tracked = append(tracked, span{e.seq, e.seq})
		}
	}
	if len(ents) > 0 && (ents[0].state == None || ents[len(ents)-1].state == None) {
		c.fatalf("tombstone at an end of the entry array")
	}
	if live != tr.Len() || live > cfg.MaxPending {
		c.fatalf("Len %d, counted %d, MaxPending %d", tr.Len(), live, cfg.MaxPending)
	}
	if n := cap(tr.buf); n > max(2*cfg.MaxPending, 16) {
		c.fatalf("entry array cap %d exceeds 2×MaxPending", n)
	}
	c.checkTimers()
	pend := rset(tr.pending.s)
	for i, s := range pend {
		if s.last < s.first || (i > 0 && s.first <= pend[i-1].last+1) {
			c.fatalf("bad pending spans %v", pend)
		}
	}
	if len(pend) > tr.pendingCap {
		c.fatalf("%d pending spans, cap %d", len(pend), tr.pendingCap)
	}
	if !slices.Equal(tracked.minus(pend), tracked) {
		c.fatalf("sequences both tracked and given up: tracked %v, pending %v", tracked, pend)
	}
	all := tracked.union(pend)
	if tr.coarse == 0 {
		if !slices.Equal(all, c.open) {
			c.fatalf("tracked ∪ given-up = %v, open = %v", all, c.open)
		}
	} else {
		if len(tracked.minus(c.open)) != 0 || len(c.open.minus(all)) != 0 {
			c.fatalf("coarse: tracked %v, pending %v, open %v", tracked, pend, c.open)
		}
	}
	if s := tr.Stats(); s.NAKs != c.nakCount || s.Lost != c.lostCount ||
		s.Lost != s.LostNCFRetries+s.LostDataRetries+s.LostOverflow || s.Suppressed > s.NCFs {
		c.fatalf("Stats %+v, counted %d NAKs %d lost", s, c.nakCount, c.lostCount)
	}
}

// TestRandomOps drives trackers with seeded random workloads shaped like a
// receiver's: gaps mostly beyond the lead, sometimes behind it; NCFs and
// repairs for sequences that were NAKed; the trail moving on.
func TestRandomOps(t *testing.T) {
	seeds, ops := 200, 3000
	if raceEnabled || testing.Short() {
		seeds, ops = 40, 1500
	}
	cfgs := []Config{
		{MaxPending: 4, NCFRetries: 2, DataRetries: 2},
		{MaxPending: 16, NCFRetries: 3, DataRetries: 2, BackoffIvl: 5 * time.Millisecond},
		{MaxPending: 100},
		{MaxPending: 1, NCFRetries: 1, DataRetries: 1},
	}
	for seed := range uint64(seeds) {
		cfg := cfgs[seed%uint64(len(cfgs))]
		c := newChecker(t, cfg, seed)
		if seed%3 == 0 {
			c.tr.timerSlack = 1 // rebuild the timer heap often
		}
		rng := rand.New(rand.NewPCG(seed, 42))
		lead, trail := uint64(1000), uint64(1000)
		recent := func() uint64 { return trail + uint64(rng.IntN(int(lead-trail)+1)) }
		for range ops {
			switch k := rng.IntN(100); {
			case k < 20: // a packet beyond the lead reveals a gap
				n := uint64(rng.IntN(8))
				if rng.IntN(50) == 0 {
					n = uint64(rng.IntN(1000))
				}
				c.missing(lead+1, lead+1+n)
				lead += n + 2
			case k < 24: // out-of-order or repeated report
				f := recent()
				c.missing(f, f+uint64(rng.IntN(5)))
			case k < 40:
				c.ncf(recent())
			case k < 60:
				c.repaired(recent())
			case k < 63:
				trail += uint64(rng.IntN(int(lead-trail)/4 + 1))
				c.forget(trail)
			case k < 64 && rng.IntN(10) == 0:
				c.reset()
			case k < 85:
				c.advance(c.now.Add(time.Duration(rng.IntN(60_000)) * time.Microsecond))
			default:
				c.advanceToDeadline()
			}
		}
		c.drain()
		if t.Failed() {
			return
		}
	}
}

// FuzzTracker interprets its input as a configuration and a list of
// operations, runs them against the model and checks every invariant; then
// it drains the tracker.
func FuzzTracker(f *testing.F) {
	f.Add([]byte{3, 0, 0, 0, 1, 4, 5, 10, 6, 0, 3, 1, 6, 0, 5, 250, 2, 1})
	f.Add([]byte{0, 5, 1, 0, 0, 8, 0, 20, 8, 1, 3, 0, 5, 0, 6, 0, 6, 0})
	f.Add([]byte{31, 15, 2, 1, 0, 0, 1, 200, 7, 0, 3, 0, 4, 0, 9, 0, 6, 0})
	f.Add([]byte{1, 3, 0, 0, 10, 2, 0, 1, 2, 0, 30, 2, 0, 50, 2, 4, 20, 0, 2, 40, 5, 100})
	f.Add([]byte{2, 0, 1, 1, 7, 1, 250, 0, 3, 250, 0, 6, 0, 5, 3, 8, 0, 4, 2, 5})
	seed := make([]byte, 0, 256)
	for i := range 128 {
		seed = append(seed, byte(i*7), byte(i*13))
	}
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 4 {
			return
		}
		cfg := Config{
			MaxPending:  1 + int(data[0]%32),
			NCFRetries:  1 + int(data[1]%4),
			DataRetries: 1 + int(data[1]>>2%4),
			BackoffIvl:  time.Duration(1+data[1]>>4) * time.Millisecond,
		}
		var base uint64
		switch data[2] % 3 {
		case 1:
			base = math.MaxUint64 - 300
		case 2:
			base = 1 << 40
		}
		c := newChecker(t, cfg, uint64(data[3]))
		if data[2]&0x80 != 0 {
			c.tr.timerSlack = 1 // rebuild the timer heap often
		}
		at := func(b byte) uint64 { return base + uint64(b) }
		ops := data[4:]
		if len(ops) > 1024 {
			ops = ops[:1024] // longer inputs only slow the fuzzer down
		}
		for len(ops) >= 2 {
			op, a := ops[0], ops[1]
			ops = ops[2:]
			switch op % 10 {
			case 0, 1:
				first := at(a)
				last := first + uint64(op>>4)
				if last < first {
					last = math.MaxUint64
				}
				c.missing(first, last)
			case 2:
				c.repaired(at(a))
			case 3:
				c.ncf(at(a))
			case 4:
				c.forget(at(a))
			case 5:
				c.advance(c.now.Add(time.Duration(a) * time.Millisecond))
			case 6:
				c.advanceToDeadline()
			case 7: // a gap far wider than MaxPending
				first := at(a)
				last := first + 1<<40
				if last < first {
					last = math.MaxUint64
				}
				c.missing(first, last)
			case 8:
				if len(ops) >= 2 { // a gap given by two bytes, any order
					w := binary.BigEndian.Uint16(ops)
					ops = ops[2:]
					c.missing(at(a), at(a)+uint64(w%64))
				}
			case 9:
				if op>>4 == 0 {
					c.reset()
				} else {
					c.advance(c.now.Add(-time.Duration(a) * time.Microsecond)) // clock steps back
				}
			}
		}
		c.drain()
	})
}
