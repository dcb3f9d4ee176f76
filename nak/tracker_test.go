package nak

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"
)

// t0 is the fake clock's start. It has no monotonic reading, like every time
// a test makes up.
var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// nakTest drives a Tracker on a fake clock, in the manner of x/net/quic's
// lossTest: the test moves time, and every NAK or loss that Advance reports
// must be claimed with wantNAKs/wantLost before the test ends.
type nakTest struct {
	t    *testing.T
	tr   *Tracker
	now  time.Time
	naks []uint64 // reported, not yet claimed
	lost []Lost   // reported, not yet claimed
}

func newNakTest(t *testing.T, cfg Config) *nakTest {
	t.Helper()
	tt := &nakTest{t: t, tr: New(cfg, rand.New(rand.NewPCG(1, 2))), now: t0}
	t.Cleanup(func() {
		if len(tt.naks) > 0 || len(tt.lost) > 0 {
			t.Errorf("unclaimed events at end of test: naks %v, lost %v", tt.naks, tt.lost)
		}
	})
	return tt
}

// advance moves the clock by d and runs Advance.
func (tt *nakTest) advance(d time.Duration) {
	tt.t.Helper()
	tt.now = tt.now.Add(d)
	tt.fire()
}

// advanceToDeadline moves the clock to NextDeadline, runs Advance, and
// returns how far the clock moved.
func (tt *nakTest) advanceToDeadline() time.Duration {
	tt.t.Helper()
	d := tt.tr.NextDeadline()
	if d.IsZero() {
		tt.t.Fatalf("advanceToDeadline: no deadline")
	}
	if d.Before(tt.now) {
		tt.t.Fatalf("NextDeadline %v is before now %v", d.Sub(t0), tt.now.Sub(t0))
	}
	moved := d.Sub(tt.now)
	tt.now = d
	tt.fire()
	return moved
}

func (tt *nakTest) fire() {
	tt.t.Helper()
	tt.naks, tt.lost = tt.tr.Advance(tt.now, tt.naks, tt.lost)
	if d := tt.tr.NextDeadline(); !d.IsZero() && !d.After(tt.now) {
		tt.t.Fatalf("after Advance(%v): NextDeadline %v is not in the future", tt.now.Sub(t0), d.Sub(t0))
	}
	if tt.tr.Len() == 0 && !tt.tr.NextDeadline().IsZero() {
		tt.t.Fatalf("nothing tracked, but NextDeadline = %v", tt.tr.NextDeadline().Sub(t0))
	}
}

func (tt *nakTest) missing(first, last uint64) {
	tt.t.Helper()
	tt.t.Logf("# %v: missing %d..%d", tt.now.Sub(t0), first, last)
	tt.tr.Missing(tt.now, first, last)
}

func (tt *nakTest) ncf(seq uint64) {
	tt.t.Helper()
	if !tt.tr.NCF(tt.now, seq) {
		tt.t.Fatalf("NCF(%d) = false, want true", seq)
	}
}

// wantNAKs claims the NAKs reported since the last call.
func (tt *nakTest) wantNAKs(want ...uint64) {
	tt.t.Helper()
	if !slices.Equal(tt.naks, want) {
		tt.t.Fatalf("%v: NAKs = %v, want %v", tt.now.Sub(t0), tt.naks, want)
	}
	tt.naks = tt.naks[:0]
}

// wantLost claims the losses reported since the last call.
func (tt *nakTest) wantLost(want ...Lost) {
	tt.t.Helper()
	if !slices.Equal(tt.lost, want) {
		tt.t.Fatalf("%v: lost = %v, want %v", tt.now.Sub(t0), tt.lost, want)
	}
	tt.lost = tt.lost[:0]
}

func (tt *nakTest) wantNoEvents() {
	tt.t.Helper()
	tt.wantNAKs()
	tt.wantLost()
}

func (tt *nakTest) wantState(seq uint64, want State) {
	tt.t.Helper()
	if got := tt.tr.State(seq); got != want {
		tt.t.Fatalf("State(%d) = %v, want %v", seq, got, want)
	}
	if got := tt.tr.Tracking(seq); got != (want != None) {
		tt.t.Fatalf("Tracking(%d) = %v, want %v", seq, got, want != None)
	}
}

// wantDeadlineIn checks that NextDeadline is in [now+lo, now+hi).
func (tt *nakTest) wantDeadlineIn(lo, hi time.Duration) {
	tt.t.Helper()
	d := tt.tr.NextDeadline()
	if d.IsZero() {
		tt.t.Fatalf("NextDeadline = zero, want in [+%v, +%v)", lo, hi)
	}
	if got := d.Sub(tt.now); got < lo || got >= hi {
		tt.t.Fatalf("NextDeadline = now+%v, want in [+%v, +%v)", got, lo, hi)
	}
}

func (tt *nakTest) wantNoDeadline() {
	tt.t.Helper()
	if d := tt.tr.NextDeadline(); !d.IsZero() {
		tt.t.Fatalf("NextDeadline = now+%v, want none", d.Sub(tt.now))
	}
}

func TestDefaults(t *testing.T) {
	got := New(Config{}, nil).Config()
	want := Config{
		BackoffIvl:  50 * time.Millisecond,
		RepeatIvl:   200 * time.Millisecond,
		RdataIvl:    400 * time.Millisecond,
		RdataFirst:  400 * time.Millisecond, // the effective value: RdataIvl
		NCFRetries:  10,
		DataRetries: 10,
		MaxPending:  65536,
	}
	if got != want {
		t.Errorf("zero Config = %+v, want %+v", got, want)
	}
	neg := New(Config{BackoffIvl: -1, RepeatIvl: -1, RdataIvl: -1, NCFRetries: -1, DataRetries: -1, MaxPending: -1}, nil).Config()
	if neg != want {
		t.Errorf("negative Config = %+v, want defaults %+v", neg, want)
	}
	big := New(Config{NCFRetries: 1 << 20, DataRetries: 1 << 20, MaxPending: 1 << 40}, nil).Config()
	if big.NCFRetries != MaxRetries || big.DataRetries != MaxRetries || big.MaxPending != MaxMaxPending {
		t.Errorf("huge Config = %+v, want limits applied", big)
	}
}

func TestBackoffThenNAK(t *testing.T) {
	tt := newNakTest(t, Config{})
	tt.missing(10, 12)
	for s := uint64(10); s <= 12; s++ {
		tt.wantState(s, BackOff)
	}
	tt.wantDeadlineIn(MinBackoff, DefaultBackoffIvl)

	t.Logf("# nothing is due just before the back-off expires")
	tt.advance(tt.tr.NextDeadline().Sub(tt.now) - 1)
	tt.wantNoEvents()

	t.Logf("# the whole gap, found by one packet, is NAKed at once")
	tt.advance(1)
	tt.wantNAKs(10, 11, 12)
	for s := uint64(10); s <= 12; s++ {
		tt.wantState(s, WaitNCF)
	}
	tt.wantDeadlineIn(DefaultRepeatIvl, DefaultRepeatIvl+1)
	if got := tt.tr.Stats().NAKs; got != 3 {
		t.Errorf("Stats.NAKs = %d, want 3", got)
	}
	tt.tr.Reset()
}

func TestSeparateGapsSeparateBackoffs(t *testing.T) {
	// Two packets reveal two gaps: each gets its own draw, as in OpenPGM, so
	// the NAKs usually leave separately.
	tt := newNakTest(t, Config{})
	tt.missing(1, 1)
	tt.advance(time.Millisecond)
	tt.missing(3, 3)
	d1 := tt.tr.buf[tt.tr.head].due
	d3 := tt.tr.buf[tt.tr.head+1].due
	if d1 == d3 {
		t.Fatalf("both gaps due at the same time; expected independent draws")
	}
	var got []uint64
	for tt.tr.State(1) == BackOff || tt.tr.State(3) == BackOff {
		tt.advanceToDeadline()
		got = append(got, tt.naks...)
		tt.wantLost()
		tt.naks = tt.naks[:0]
	}
	slices.Sort(got)
	if !slices.Equal(got, []uint64{1, 3}) {
		t.Fatalf("NAKs = %v, want 1 and 3", got)
	}
	tt.tr.Reset()
}

func TestNCFSuppressesNAK(t *testing.T) {
	tt := newNakTest(t, Config{})
	tt.missing(7, 8)
	t.Logf("# an NCF (or another receiver's NAK) arrives during the back-off")
	tt.advance(MinBackoff / 2)
	tt.ncf(7)
	tt.wantState(7, WaitData)
	tt.wantState(8, BackOff)
	s := tt.tr.Stats()
	if s.Suppressed != 1 || s.NCFs != 1 {
		t.Fatalf("Stats = %+v, want Suppressed 1, NCFs 1", s)
	}
	t.Logf("# 8 is still NAKed; 7 is not")
	tt.advanceToDeadline()
	tt.wantNAKs(8)
	t.Logf("# the repair for 7 arrives before RdataIvl: no NAK for 7, ever")
	tt.advance(300 * time.Millisecond)
	tt.wantState(7, WaitData)
	tt.Repaired(7)
	tt.Repaired(8)
	tt.wantNoEvents()
	tt.wantNoDeadline()
	tt.advance(time.Hour)
	tt.wantNoEvents()
	if got := tt.tr.Stats().NAKs; got != 1 {
		t.Errorf("Stats.NAKs = %d, want 1", got)
	}
}

func (tt *nakTest) Repaired(seq uint64) {
	tt.t.Helper()
	tt.tr.Repaired(seq)
	tt.wantState(seq, None)
}

func TestNCFThenRepair(t *testing.T) {
	tt := newNakTest(t, Config{})
	tt.missing(100, 100)
	tt.advanceToDeadline()
	tt.wantNAKs(100)
	t.Logf("# NCF 10ms after the NAK: wait for the repair")
	tt.advance(10 * time.Millisecond)
	tt.ncf(100)
	tt.wantState(100, WaitData)
	tt.wantDeadlineIn(DefaultRdataIvl, DefaultRdataIvl+1)
	if s := tt.tr.Stats(); s.Suppressed != 0 || s.NCFs != 1 {
		t.Fatalf("Stats = %+v, want Suppressed 0, NCFs 1", s)
	}
	t.Logf("# RDATA arrives")
	tt.advance(5 * time.Millisecond)
	tt.Repaired(100)
	if tt.tr.Len() != 0 {
		t.Fatalf("Len = %d, want 0", tt.tr.Len())
	}
	tt.wantNoDeadline()
	t.Logf("# unknown sequences are no-ops")
	tt.Repaired(100)
	tt.Repaired(5)
	if tt.tr.NCF(tt.now, 100) {
		t.Fatalf("NCF(100) = true for an untracked sequence")
	}
	if s := tt.tr.Stats(); s.Repaired != 1 || s.NCFs != 1 {
		t.Fatalf("Stats = %+v, want Repaired 1, NCFs 1", s)
	}
}

func TestRepeatNCFRefreshesWaitData(t *testing.T) {
	tt := newNakTest(t, Config{})
	tt.missing(1, 1)
	tt.advanceToDeadline()
	tt.wantNAKs(1)
	tt.ncf(1)
	tt.advance(300 * time.Millisecond)
	t.Logf("# a second NCF pushes the WAIT_DATA deadline to now+RdataIvl")
	tt.ncf(1)
	tt.wantDeadlineIn(DefaultRdataIvl, DefaultRdataIvl+1)
	tt.advance(399 * time.Millisecond)
	tt.wantState(1, WaitData)
	tt.advance(time.Millisecond)
	tt.wantState(1, BackOff)
	tt.wantDeadlineIn(MinBackoff, DefaultBackoffIvl)
	tt.advanceToDeadline()
	tt.wantNAKs(1)
	tt.tr.Reset()
}

func TestRepeatNAK(t *testing.T) {
	tt := newNakTest(t, Config{})
	tt.missing(50, 52)
	tt.advanceToDeadline()
	tt.wantNAKs(50, 51, 52)
	first := tt.now
	t.Logf("# no NCF: after RepeatIvl, back to BACK_OFF, then NAK again")
	tt.advance(DefaultRepeatIvl - 1)
	tt.wantState(50, WaitNCF)
	tt.advance(1)
	tt.wantNoEvents()
	tt.wantState(50, BackOff)
	tt.advanceToDeadline()
	t.Logf("# the repeats share one back-off, so they leave as one list")
	tt.wantNAKs(50, 51, 52)
	if gap := tt.now.Sub(first); gap < DefaultRepeatIvl+MinBackoff || gap >= DefaultRepeatIvl+DefaultBackoffIvl {
		t.Fatalf("repeat NAK %v after the first, want in [RepeatIvl+1µs, RepeatIvl+BackoffIvl)", gap)
	}
	tt.tr.Reset()
}

// runToEnd moves from deadline to deadline until nothing is tracked. onNAK
// is called for each NAK list. It returns the NAK count.
func (tt *nakTest) runToEnd(onNAK func(seqs []uint64)) int {
	tt.t.Helper()
	n := 0
	for i := 0; tt.tr.Len() > 0; i++ {
		if i > 100000 {
			tt.t.Fatalf("tracker never drained")
		}
		tt.advanceToDeadline()
		if len(tt.naks) > 0 {
			n += len(tt.naks)
			if onNAK != nil {
				onNAK(tt.naks)
			}
			tt.naks = tt.naks[:0]
		}
	}
	return n
}

func TestGiveUpAfterNCFRetries(t *testing.T) {
	for _, retries := range []int{1, 2, 3, 10, 50} {
		t.Run("", func(t *testing.T) {
			tt := newNakTest(t, Config{NCFRetries: retries})
			tt.missing(9, 9)
			naks := tt.runToEnd(nil)
			if naks != retries {
				t.Errorf("NCFRetries=%d: sent %d NAKs before giving up, want %d", retries, naks, retries)
			}
			tt.wantLost(Lost{9, 9, NCFRetriesExceeded})
			// Each cycle is a back-off in [1µs, 50ms) plus RepeatIvl.
			el := tt.now.Sub(t0)
			lo := time.Duration(retries) * (DefaultRepeatIvl + MinBackoff)
			hi := time.Duration(retries) * (DefaultRepeatIvl + DefaultBackoffIvl)
			if el < lo || el >= hi {
				t.Errorf("NCFRetries=%d: lost after %v, want in [%v, %v)", retries, el, lo, hi)
			}
			s := tt.tr.Stats()
			if s.Lost != 1 || s.LostNCFRetries != 1 || s.NAKs != uint64(retries) {
				t.Errorf("Stats = %+v", s)
			}
		})
	}
}

func TestGiveUpAfterNCFRetriesOpenPGMTiming(t *testing.T) {
	// research/openpgm.md §6.2: with NAK_NCF_RETRIES = 2 OpenPGM sent two
	// NAKs and declared loss about 470ms after the gap (RPT_IVL 200ms).
	tt := newNakTest(t, Config{NCFRetries: 2})
	tt.missing(24, 24)
	if n := tt.runToEnd(nil); n != 2 {
		t.Fatalf("sent %d NAKs, want 2", n)
	}
	tt.wantLost(Lost{24, 24, NCFRetriesExceeded})
	if el := tt.now.Sub(t0); el < 400*time.Millisecond || el >= 500*time.Millisecond {
		t.Fatalf("lost after %v, want about 470ms (in [400ms, 500ms))", el)
	}
}

func TestGiveUpAfterDataRetries(t *testing.T) {
	for _, retries := range []int{1, 2, 10} {
		t.Run("", func(t *testing.T) {
			tt := newNakTest(t, Config{DataRetries: retries, NCFRetries: 1})
			tt.missing(3, 4)
			// The source confirms every NAK at once but never repairs.
			// NCFRetries=1 proves the NCFs keep WAIT_NCF from timing out.
			naks := tt.runToEnd(func(seqs []uint64) {
				for _, s := range seqs {
					tt.ncf(s)
				}
			})
			if naks != 2*retries {
				t.Errorf("DataRetries=%d: %d NAKs, want %d", retries, naks, 2*retries)
			}
			tt.wantLost(Lost{3, 4, DataRetriesExceeded})
			el := tt.now.Sub(t0)
			lo := time.Duration(retries) * (DefaultRdataIvl + MinBackoff)
			hi := time.Duration(retries) * (DefaultRdataIvl + DefaultBackoffIvl)
			if el < lo || el >= hi {
				t.Errorf("lost after %v, want in [%v, %v)", el, lo, hi)
			}
			if s := tt.tr.Stats(); s.LostDataRetries != 2 || s.NCFs != uint64(2*retries) {
				t.Errorf("Stats = %+v", s)
			}
		})
	}
}

func TestRetryCountsAreCumulative(t *testing.T) {
	// OpenPGM never resets ncf_retry_count or data_retry_count: a sequence
	// that got an NCF in between still dies on the third WAIT_NCF time-out.
	tt := newNakTest(t, Config{NCFRetries: 3, DataRetries: 3})
	tt.missing(1, 1)
	tt.advanceToDeadline()
	tt.wantNAKs(1) // NAK #1
	tt.advance(DefaultRepeatIvl)
	tt.advanceToDeadline()
	tt.wantNAKs(1) // NAK #2 (ncf=1)
	tt.ncf(1)
	tt.advance(DefaultRdataIvl)
	tt.wantState(1, BackOff) // data=1
	tt.advanceToDeadline()
	tt.wantNAKs(1) // NAK #3
	tt.advance(DefaultRepeatIvl)
	tt.advanceToDeadline()
	tt.wantNAKs(1) // NAK #4 (ncf=2)
	tt.advance(DefaultRepeatIvl)
	tt.wantLost(Lost{1, 1, NCFRetriesExceeded}) // ncf=3
	tt.wantState(1, None)
	tt.wantNoDeadline()
}

func TestForget(t *testing.T) {
	tt := newNakTest(t, Config{})
	tt.missing(1, 10)
	tt.advanceToDeadline()
	tt.wantNAKs(1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
	tt.ncf(3)
	t.Logf("# the source's trail passes 6: the caller reports 1..5 lost itself")
	tt.tr.Forget(6)
	for s := uint64(1); s < 6; s++ {
		tt.wantState(s, None)
	}
	tt.wantState(6, WaitNCF)
	if got := tt.tr.Len(); got != 5 {
		t.Fatalf("Len = %d, want 5", got)
	}
	if got := tt.tr.Stats().Forgotten; got != 5 {
		t.Fatalf("Stats.Forgotten = %d, want 5", got)
	}
	t.Logf("# forgotten sequences are never reported lost")
	tt.runToEnd(nil)
	tt.wantLost(Lost{6, 10, NCFRetriesExceeded})
	tt.tr.Forget(0) // no-op
	tt.tr.Forget(math.MaxUint64)
}

func TestForgetEverything(t *testing.T) {
	tt := newNakTest(t, Config{})
	tt.missing(5, 9)
	tt.tr.Forget(100)
	if tt.tr.Len() != 0 {
		t.Fatalf("Len = %d, want 0", tt.tr.Len())
	}
	tt.wantNoDeadline()
	tt.advance(time.Hour)
	tt.wantNoEvents()
}

func TestOutOfOrderMissing(t *testing.T) {
	tt := newNakTest(t, Config{})
	tt.missing(20, 25)
	tt.advanceToDeadline()
	tt.wantNAKs(20, 21, 22, 23, 24, 25)
	tt.ncf(21)
	tt.Repaired(23)

	t.Logf("# an older gap, then one overlapping tracked, repaired and new sequences")
	tt.missing(5, 7)
	tt.missing(10, 30)
	tt.wantState(20, WaitNCF) // already tracked: left alone
	tt.wantState(21, WaitData)
	tt.wantState(23, BackOff) // repaired, then reported missing again
	tt.wantState(26, BackOff)
	tt.wantState(8, None)
	if got, want := tt.tr.Len(), 3+21; got != want {
		t.Fatalf("Len = %d, want %d", got, want)
	}
	t.Logf("# NAKs come out in increasing order whatever the order of the gaps")
	var all []uint64
	for tt.tr.State(5) == BackOff || tt.tr.State(10) == BackOff {
		tt.advanceToDeadline()
		if !slices.IsSorted(tt.naks) {
			t.Fatalf("NAKs not increasing: %v", tt.naks)
		}
		all = append(all, tt.naks...)
		tt.naks = tt.naks[:0]
	}
	slices.Sort(all)
	want := []uint64{5, 6, 7, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 23, 26, 27, 28, 29, 30}
	if !slices.Equal(all, want) {
		t.Fatalf("NAKs %v, want %v", all, want)
	}
	tt.tr.Reset()
}

func TestMissingEmptyAndDuplicate(t *testing.T) {
	tt := newNakTest(t, Config{})
	tt.missing(10, 9) // last < first
	if tt.tr.Len() != 0 {
		t.Fatalf("Missing(10, 9) tracked something")
	}
	tt.wantNoDeadline()
	tt.missing(1, 3)
	d := tt.tr.NextDeadline()
	tt.advance(time.Millisecond / 2)
	tt.missing(1, 3) // all tracked: no change, no new draw
	if got := tt.tr.NextDeadline(); !got.Equal(d) {
		t.Fatalf("duplicate Missing moved the deadline from %v to %v", d, got)
	}
	tt.tr.Reset()
}

func TestHugeGap(t *testing.T) {
	const m = 1000
	tt := newNakTest(t, Config{MaxPending: m})
	last := uint64(1) << 40
	start := time.Now()
	tt.missing(0, last)
	if el := time.Since(start); el > time.Second {
		t.Errorf("Missing of a 2^40 gap took %v", el)
	}
	if got := tt.tr.Len(); got != m {
		t.Fatalf("Len = %d, want %d", got, m)
	}
	tt.wantState(last-m+1, BackOff)
	tt.wantState(last, BackOff)
	tt.wantState(last-m, None)
	tt.wantState(0, None)
	if c := cap(tt.tr.buf); c > 2*m {
		t.Errorf("entry array cap %d > 2*MaxPending", c)
	}
	t.Logf("# the older part is reported at once, as one range")
	if d := tt.tr.NextDeadline(); !d.Equal(tt.now) {
		t.Fatalf("NextDeadline = now+%v, want now", d.Sub(tt.now))
	}
	tt.advance(0)
	tt.wantLost(Lost{0, last - m, Overflow})
	if s := tt.tr.Stats(); s.LostOverflow != last-m+1 || s.Lost != last-m+1 {
		t.Fatalf("Stats = %+v", s)
	}

	t.Logf("# the whole sequence space at once")
	tt.tr.Reset()
	tt.missing(0, math.MaxUint64)
	if got := tt.tr.Len(); got != m {
		t.Fatalf("Len = %d, want %d", got, m)
	}
	tt.wantState(math.MaxUint64, BackOff)
	tt.advance(0)
	tt.wantLost(Lost{0, math.MaxUint64 - m, Overflow})
	tt.tr.Reset()
}

func TestHugeGapDefault(t *testing.T) {
	tt := newNakTest(t, Config{})
	tt.missing(1, 1<<40)
	if got := tt.tr.Len(); got != DefaultMaxPending {
		t.Fatalf("Len = %d, want %d", got, DefaultMaxPending)
	}
	tt.advance(0)
	tt.wantLost(Lost{1, 1<<40 - DefaultMaxPending, Overflow})
	tt.tr.Reset()
}

func TestMaxPendingOverflow(t *testing.T) {
	tt := newNakTest(t, Config{MaxPending: 4})
	tt.missing(1, 3)
	tt.advanceToDeadline()
	tt.wantNAKs(1, 2, 3)
	tt.missing(5, 6) // 5 tracked: 1 is the oldest, given up
	tt.wantState(1, None)
	tt.wantState(2, WaitNCF)
	tt.missing(10, 10) // 2 given up
	tt.wantState(2, None)
	if got := tt.tr.Len(); got != 4 {
		t.Fatalf("Len = %d, want 4", got)
	}
	if d := tt.tr.NextDeadline(); !d.Equal(tt.now) {
		t.Fatalf("NextDeadline = now+%v, want now (losses to report)", d.Sub(tt.now))
	}
	t.Logf("# one Advance reports both, merged")
	tt.advance(0)
	tt.wantLost(Lost{1, 2, Overflow})

	t.Logf("# an older gap, when full, is itself the oldest: given up at once")
	tt.missing(0, 0)
	tt.wantState(0, None)
	tt.advance(0)
	tt.wantLost(Lost{0, 0, Overflow})

	t.Logf("# a gap wider than MaxPending plus tracked ones")
	tt.missing(20, 29)
	for _, s := range []uint64{26, 27, 28, 29} {
		tt.wantState(s, BackOff)
	}
	tt.advance(0)
	tt.wantLost(Lost{3, 3, Overflow}, Lost{5, 6, Overflow}, Lost{10, 10, Overflow}, Lost{20, 25, Overflow})
	tt.tr.Reset()
}

func TestOverflowWithdrawn(t *testing.T) {
	tt := newNakTest(t, Config{MaxPending: 2})
	tt.missing(1, 6) // 1..4 given up, 5..6 tracked
	t.Logf("# a repair for a given-up sequence arrives before Advance")
	tt.tr.Repaired(2)
	t.Logf("# the caller forgets 1 (trail passed it)")
	tt.tr.Forget(2)
	t.Logf("# 4 is reported missing again, but as the oldest it is given up again")
	tt.missing(4, 4)
	tt.wantState(4, None)
	t.Logf("# with room, a sequence reported missing again is tracked again")
	tt.tr.Repaired(5)
	tt.missing(4, 4)
	tt.wantState(4, BackOff)
	tt.advance(0)
	tt.wantLost(Lost{3, 3, Overflow})
	tt.tr.Reset()
}

func TestLostOrderAndMerging(t *testing.T) {
	tt := newNakTest(t, Config{NCFRetries: 1, MaxPending: 6})
	tt.missing(10, 13)
	tt.advanceToDeadline()
	tt.wantNAKs(10, 11, 12, 13)
	tt.ncf(12)
	t.Logf("# overflow gives up 10 just before 11 and 13 time out")
	tt.missing(20, 22)
	tt.advance(DefaultRepeatIvl)
	// 10: Overflow, 11: NCF retries, 12: waiting for data, 13: NCF retries.
	tt.wantLost(Lost{10, 10, Overflow}, Lost{11, 11, NCFRetriesExceeded}, Lost{13, 13, NCFRetriesExceeded})
	tt.wantNAKs(20, 21, 22)
	tt.tr.Reset()

	t.Logf("# entries already in the caller's slice are never merged into")
	tt.missing(1, 7) // 1 given up
	prev := []Lost{{0, 0, Overflow}}
	_, got := tt.tr.Advance(tt.now, nil, prev)
	if want := []Lost{{0, 0, Overflow}, {1, 1, Overflow}}; !slices.Equal(got, want) {
		t.Fatalf("lost = %v, want %v", got, want)
	}
	tt.tr.Reset()
}

func TestSequenceSpaceEdge(t *testing.T) {
	const top = math.MaxUint64
	tt := newNakTest(t, Config{NCFRetries: 1})
	tt.missing(top-2, top)
	tt.missing(0, 1) // smaller values: the tracker knows no wrap-around
	var naks []uint64
	tt.runToEnd(func(seqs []uint64) { naks = append(naks, seqs...) })
	slices.Sort(naks)
	if want := []uint64{0, 1, top - 2, top - 1, top}; !slices.Equal(naks, want) {
		t.Fatalf("NAKs = %v, want %v", naks, want)
	}
	got := slices.Clone(tt.lost)
	tt.lost = tt.lost[:0]
	slices.SortFunc(got, func(a, b Lost) int { return cmp.Compare(a.First, b.First) })
	if want := []Lost{{0, 1, NCFRetriesExceeded}, {top - 2, top, NCFRetriesExceeded}}; !slices.Equal(got, want) {
		t.Fatalf("lost = %v, want %v", got, want)
	}
}

func TestNextDeadlineAfterRemoval(t *testing.T) {
	tt := newNakTest(t, Config{})
	tt.missing(1, 1)
	tt.advance(10 * time.Millisecond)
	tt.missing(2, 2)
	tt.advance(10 * time.Millisecond)
	tt.missing(3, 3)
	dues := []time.Time{}
	for _, s := range []uint64{1, 2, 3} {
		i, _ := tt.tr.find(s)
		dues = append(dues, tt.tr.epoch.Add(time.Duration(tt.tr.buf[i].due)))
	}
	earliest := slices.MinFunc(dues, time.Time.Compare)
	if d := tt.tr.NextDeadline(); !d.Equal(earliest) {
		t.Fatalf("NextDeadline %v, want %v", d, earliest)
	}
	t.Logf("# remove whichever is earliest, repeatedly; the deadline follows")
	for len(dues) > 0 {
		i := slices.IndexFunc(dues, func(x time.Time) bool { return x.Equal(slices.MinFunc(dues, time.Time.Compare)) })
		var seq uint64
		for _, s := range []uint64{1, 2, 3} {
			if j, ok := tt.tr.find(s); ok && tt.tr.epoch.Add(time.Duration(tt.tr.buf[j].due)).Equal(dues[i]) {
				seq = s
			}
		}
		tt.tr.Repaired(seq)
		dues = slices.Delete(dues, i, i+1)
		want := time.Time{}
		if len(dues) > 0 {
			want = slices.MinFunc(dues, time.Time.Compare)
		}
		if d := tt.tr.NextDeadline(); !d.Equal(want) {
			t.Fatalf("after Repaired(%d): NextDeadline %v, want %v", seq, d, want)
		}
	}
}

func TestNilRand(t *testing.T) {
	tr := New(Config{}, nil)
	tr.Missing(t0, 1, 1)
	if d := tr.NextDeadline().Sub(t0); d < MinBackoff || d >= DefaultBackoffIvl {
		t.Fatalf("back-off %v out of range", d)
	}
}

func TestTinyBackoff(t *testing.T) {
	// A BackoffIvl at or below MinBackoff means exactly MinBackoff.
	tt := newNakTest(t, Config{BackoffIvl: time.Nanosecond})
	tt.missing(1, 1)
	tt.wantDeadlineIn(MinBackoff, MinBackoff+1)
	tt.tr.Reset()
}

func TestMonotonicClock(t *testing.T) {
	// Real clock readings (with a monotonic part) round-trip through
	// NextDeadline.
	tr := New(Config{}, rand.New(rand.NewPCG(3, 4)))
	now := time.Now()
	tr.Missing(now, 1, 1)
	d := tr.NextDeadline()
	if got := d.Sub(now); got < MinBackoff || got >= DefaultBackoffIvl {
		t.Fatalf("deadline now+%v", got)
	}
	naks, _ := tr.Advance(d, nil, nil)
	if !slices.Equal(naks, []uint64{1}) {
		t.Fatalf("NAKs = %v", naks)
	}
}

// trace runs a fixed script and records everything Advance reports.
func trace(seed uint64) []string {
	tr := New(Config{MaxPending: 64, NCFRetries: 3, DataRetries: 3}, rand.New(rand.NewPCG(seed, seed)))
	ops := rand.New(rand.NewPCG(99, 99)) // the script itself is fixed
	now := t0
	var out []string
	var naks []uint64
	var lost []Lost
	for i := 0; i < 2000; i++ {
		now = now.Add(time.Duration(ops.IntN(30)) * time.Millisecond)
		s := uint64(ops.IntN(200))
		switch ops.IntN(4) {
		case 0:
			tr.Missing(now, s, s+uint64(ops.IntN(10)))
		case 1:
			tr.NCF(now, s)
		case 2:
			tr.Repaired(s)
		}
		naks, lost = tr.Advance(now, naks[:0], lost[:0])
		out = append(out, now.Sub(t0).String()+" "+tr.NextDeadline().Sub(t0).String())
		for _, n := range naks {
			out = append(out, "nak "+strconv.FormatUint(n, 10))
		}
		for _, l := range lost {
			out = append(out, "lost "+l.String())
		}
	}
	return out
}

func TestDeterminism(t *testing.T) {
	a, b := trace(7), trace(7)
	if !slices.Equal(a, b) {
		t.Fatalf("same seed, different runs")
	}
	if c := trace(8); slices.Equal(a, c) {
		t.Fatalf("different seeds, identical runs: the generator is not used")
	}
}

func TestStrings(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{BackOff.String(), "BackOff"},
		{WaitNCF.String(), "WaitNCF"},
		{WaitData.String(), "WaitData"},
		{None.String(), "None"},
		{State(9).String(), "State(9)"},
		{Overflow.String(), "Overflow"},
		{Reason(0).String(), "Reason(0)"},
		{Lost{3, 3, NCFRetriesExceeded}.String(), "3(NCFRetriesExceeded)"},
		{Lost{3, 5, DataRetriesExceeded}.String(), "3-5(DataRetriesExceeded)"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	if n := (Lost{First: 0, Last: 9}).Count(); n != 10 {
		t.Errorf("Count = %d", n)
	}
}

func TestPendingCap(t *testing.T) {
	// A caller that overflows again and again without calling Advance: the
	// unreported ranges are capped (max(MaxPending, 16) of them) by merging
	// the closest ones, so a report may cover sequences never missing. This
	// is the documented price of bounded memory.
	tt := newNakTest(t, Config{MaxPending: 1})
	for k := uint64(0); k <= 40; k++ {
		tt.tr.Missing(tt.now, 2*k, 2*k) // each evicts the previous one
	}
	if n := len(tt.tr.pending.s); n > 16 {
		t.Fatalf("%d unreported ranges, want at most 16", n)
	}
	if tt.tr.coarse == 0 {
		t.Fatalf("ranges were not merged")
	}
	tt.wantState(80, BackOff)
	tt.advance(0)
	var covered uint64
	for i, l := range tt.lost {
		if l.Reason != Overflow || (i > 0 && l.First <= tt.lost[i-1].Last) {
			t.Fatalf("lost = %v", tt.lost)
		}
		covered += l.Count()
	}
	if tt.lost[0].First != 0 || tt.lost[len(tt.lost)-1].Last != 78 || covered < 40 {
		t.Fatalf("lost = %v: want every even sequence 0..78 covered", tt.lost)
	}
	tt.lost = tt.lost[:0]
	tt.tr.Reset()

	t.Logf("# a merge that covers a tracked sequence gives it up too")
	tr := New(Config{MaxPending: 20}, rand.New(rand.NewPCG(1, 1)))
	tr.Missing(t0, 1000, 1000) // tracked throughout: the newest
	for k := uint64(0); k < 40; k++ {
		tr.Missing(t0, 3*k, 3*k)
	}
	for k := uint64(0); k < 40; k++ {
		tr.Missing(t0, 3*k+1, 3*k+1)
	}
	for _, sp := range tr.pending.s {
		for s := sp.first; s <= sp.last; s++ {
			if tr.Tracking(s) {
				t.Fatalf("%d both tracked and given up", s)
			}
		}
	}
	if len(tr.pending.s) > 20 || tr.Len() != 20 {
		t.Fatalf("%d ranges, %d tracked", len(tr.pending.s), tr.Len())
	}
}

// TestRandomBursts is TestRandomOps without Advance for long stretches, so
// that overflow reports pile up and the range cap is exercised.
func TestRandomBursts(t *testing.T) {
	for seed := range uint64(30) {
		c := newChecker(t, Config{MaxPending: 1 + int(seed%5), NCFRetries: 2, DataRetries: 2}, seed)
		rng := rand.New(rand.NewPCG(seed, 7))
		for range 400 {
			switch k := rng.IntN(20); {
			case k < 12:
				f := uint64(rng.IntN(200))
				c.missing(f, f+uint64(rng.IntN(3)))
			case k < 15:
				c.repaired(uint64(rng.IntN(200)))
			case k < 16:
				c.forget(uint64(rng.IntN(50)))
			case k < 17:
				c.ncf(uint64(rng.IntN(200)))
			case k < 18:
				c.advanceToDeadline()
			default:
				c.now = c.now.Add(time.Millisecond)
			}
		}
		c.drain()
		if t.Failed() {
			return
		}
	}
}

// With RdataFirst, the wait for a repair starts short and doubles with each
// WAIT_DATA time-out, up to RdataIvl; a repeated NCF restarts the current
// wait, not the first one.
func TestRdataFirstDoubles(t *testing.T) {
	tt := newNakTest(t, Config{RdataIvl: 200 * time.Millisecond, RdataFirst: 25 * time.Millisecond,
		BackoffIvl: time.Millisecond, DataRetries: 6})
	if got := tt.tr.Config().RdataFirst; got != 25*time.Millisecond {
		t.Fatalf("Config().RdataFirst = %v", got)
	}
	tt.missing(7, 7)
	var waits []time.Duration
	for range 6 {
		tt.advanceToDeadline() // back-off ends: NAK
		tt.wantNAKs(7)
		tt.ncf(7)
		ncfAt := tt.now
		if len(waits) == 2 {
			// A repeated NCF 5ms later restarts the wait from then.
			tt.advance(5 * time.Millisecond)
			tt.ncf(7)
			ncfAt = tt.now
		}
		tt.advanceToDeadline() // the repair did not come
		waits = append(waits, tt.now.Sub(ncfAt))
	}
	tt.wantLost(Lost{7, 7, DataRetriesExceeded})
	want := []time.Duration{25, 50, 100, 200, 200, 200}
	for i, w := range waits {
		if w != want[i]*time.Millisecond {
			t.Errorf("wait %d = %v, want %v (all %v)", i, w, want[i]*time.Millisecond, waits)
		}
	}
}

// RdataFirst longer than RdataIvl is RdataIvl: the old, fixed wait.
func TestRdataFirstCapped(t *testing.T) {
	tr := New(Config{RdataIvl: 100 * time.Millisecond, RdataFirst: time.Second}, nil)
	if got := tr.Config().RdataFirst; got != 100*time.Millisecond {
		t.Errorf("RdataFirst = %v, want 100ms", got)
	}
	if got := New(Config{}, nil).Config().RdataFirst; got != DefaultRdataIvl {
		t.Errorf("default RdataFirst = %v, want %v", got, DefaultRdataIvl)
	}
}
