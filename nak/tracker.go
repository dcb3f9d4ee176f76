package nak

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// State is the NAK state of one tracked sequence (RFC 3208 §5.3,
// OpenPGM's BACK_OFF, WAIT_NCF and WAIT_DATA).
type State uint8

const (
	// None: the sequence is not tracked (never missing, repaired,
	// forgotten, or given up).
	None State = iota
	// BackOff: waiting out a random back-off before NAKing, so that an NCF
	// or another receiver's NAK can suppress ours.
	BackOff
	// WaitNCF: a NAK was requested; waiting for the source's NCF.
	WaitNCF
	// WaitData: the NAK was confirmed (or overheard); waiting for the repair.
	WaitData
)

func (s State) String() string {
	switch s {
	case None:
		return "None"
	case BackOff:
		return "BackOff"
	case WaitNCF:
		return "WaitNCF"
	case WaitData:
		return "WaitData"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Stats are cumulative counters of a Tracker.
type Stats struct {
	NAKs       uint64 // sequences returned by Advance to be NAKed (first NAKs and repeats)
	NCFs       uint64 // NCFs (or overheard NAKs) applied to a tracked sequence
	Suppressed uint64 // of NCFs, those that arrived in BACK_OFF, so our NAK was not needed
	Repaired   uint64 // tracked sequences removed by Repaired
	Forgotten  uint64 // tracked sequences removed by Forget (or Reset)

	Lost            uint64 // sequences reported lost by Advance, all reasons
	LostNCFRetries  uint64 // of Lost, reason NCFRetriesExceeded
	LostDataRetries uint64 // of Lost, reason DataRetriesExceeded
	LostOverflow    uint64 // of Lost, reason Overflow
}

// entry is one tracked sequence. Entries live in Tracker.buf sorted by seq;
// an entry whose state is None is a tombstone left by a removal in the middle
// and is squeezed out by the next compaction (reserve), or revived if its
// sequence is reported missing again.
type entry struct {
	seq   uint64
	due   int64 // nanoseconds since Tracker.epoch
	state State
	ncf   uint16 // WAIT_NCF time-outs so far (cumulative)
	data  uint16 // WAIT_DATA time-outs so far (cumulative)
}

const never = math.MaxInt64 // "no deadline" in the internal time base

// Tracker is the receiver's NAK state machine for the missing sequences of
// one source. The caller reports gaps (Missing), repairs (Repaired), NCFs
// and overheard NAKs (NCF), and window movement (Forget); it calls Advance
// when NextDeadline is reached, sends the NAKs Advance returns and delivers
// the losses it reports.
//
// A Tracker does no I/O, reads no clock and starts no goroutine: time is
// passed in, and randomness comes from the generator given to New, so a run
// is reproducible. It is not safe for concurrent use.
//
// Memory is O(MaxPending) whatever the input: at most MaxPending sequences
// are tracked, the entry array never exceeds 2×MaxPending entries, the timer
// heap 2×MaxPending+64 timers, and sequences given up for Overflow are held
// as ranges until the next Advance. At worst that is about 150 bytes per
// unit of MaxPending (about 10 MB for the default), and only if that many
// sequences were ever missing at once; the memory is kept for reuse.
type Tracker struct {
	cfg config
	rng *rand.Rand

	// buf[head:] holds the entries, sorted by seq, with tombstones. The
	// first and last entries are never tombstones.
	buf  []entry
	head int
	live int // entries that are not tombstones

	// Time base: deadlines are int64 nanoseconds since epoch, the first
	// time the tracker was given. This keeps entries small and pointer-free
	// and keeps any monotonic clock reading of the caller's times.
	epoch    time.Time
	hasEpoch bool

	// Deadlines: a min-heap of timers over runs of entries (timers.go).
	// lastPush is the heap index of the timer pushed last, or -1.
	timers     []timer
	lastPush   int
	timerSlack int

	// Scratch for Advance, kept to avoid allocating.
	retried []uint64
	dead    []Lost

	// Sequences given up for Overflow, not yet reported by Advance.
	// pendingSince is the earliest time one of them was given up.
	pending      spanSet
	pendingSince int64
	pendingCap   int
	coarse       int // times pending ranges were merged to respect pendingCap (tests)

	stats Stats
}

// New returns an empty Tracker. rng supplies the random back-offs; give each
// receiver its own seeded generator for reproducible runs. A nil rng uses the
// process-wide random source of math/rand/v2 (not reproducible). Back-offs
// must differ between receivers for NAK suppression to work, so never seed
// every receiver alike in production.
func New(cfg Config, rng *rand.Rand) *Tracker {
	if rng == nil {
		rng = rand.New(globalSource{})
	}
	c := cfg.resolve()
	return &Tracker{
		cfg:        c,
		rng:        rng,
		lastPush:   -1,
		timerSlack: timerSlack,
		pendingCap: max(c.maxPending, 16),
	}
}

// globalSource draws from math/rand/v2's top-level generator.
type globalSource struct{}

func (globalSource) Uint64() uint64 { return rand.Uint64() }

// Config returns the configuration in effect, with defaults and limits
// applied.
func (t *Tracker) Config() Config {
	return Config{
		BackoffIvl:  time.Duration(t.cfg.backoff),
		RepeatIvl:   time.Duration(t.cfg.repeat),
		RdataIvl:    time.Duration(t.cfg.rdata),
		RdataFirst:  time.Duration(t.cfg.rdataFirst),
		NCFRetries:  t.cfg.ncfRetries,
		DataRetries: t.cfg.dataRetries,
		MaxPending:  t.cfg.maxPending,
	}
}

// Missing starts tracking the gap [first, last] (inclusive) in BACK_OFF,
// with one random back-off drawn for the whole call: OpenPGM draws one per
// packet that reveals loss, so a burst found by one packet is NAKed in one
// list. Sequences already tracked keep their state. last < first is a no-op.
//
// Gaps are normally reported in increasing order (that is the fast path) but
// any order works. If tracking the gap would exceed MaxPending, the oldest
// tracked sequences (possibly the older part of this very gap) are given up
// with reason Overflow; they are reported by the next Advance, and until then
// NextDeadline returns the time they were given up. A gap of any width costs O(MaxPending)
// time and memory at most.
//
// A sequence that was given up for Overflow but not yet reported is taken
// back: it is tracked again as if never given up.
func (t *Tracker) Missing(now time.Time, first, last uint64) {
	if last < first {
		return
	}
	r := t.rel(now)
	if len(t.pending.s) > 0 {
		t.pending.remove(first, last)
	}
	m := uint64(t.cfg.maxPending)
	if last-first >= m {
		// Wider than MaxPending: only the newest m can be tracked; the rest
		// is given up at once, as one range.
		cut := last - m
		t.drop(first, cut)
		t.giveUp(first, cut, r)
		first = cut + 1
	}
	n := int(last-first) + 1 // <= MaxPending

	if t.live == 0 || first > t.buf[len(t.buf)-1].seq {
		// Fast path: the gap lies beyond everything tracked. Make room
		// first (the evicted ones are all older), then append.
		if over := t.live + n - t.cfg.maxPending; over > 0 {
			t.evictOldest(over, r)
		}
		t.reserve(n)
		due := addSat(r, t.backoff())
		for s := first; ; s++ {
			t.buf = append(t.buf, entry{seq: s, due: due, state: BackOff})
			if s == last {
				break
			}
		}
		t.live += n
		t.schedule(due, first, last)
	} else if due, ok := t.insert(r, first, last); ok {
		if over := t.live - t.cfg.maxPending; over > 0 {
			t.evictOldest(over, r)
		}
		t.schedule(due, first, last) // once live <= MaxPending again
	}
	t.limitPending()
}

// insert tracks the untracked sequences of [first, last] when the gap does
// not lie beyond every entry: existing entries are kept, tombstones in the
// range are revived, and the rest are inserted in order. It returns the
// deadline given to the new entries, which the caller must schedule, and
// false if there were none.
func (t *Tracker) insert(r int64, first, last uint64) (int64, bool) {
	width := int(last-first) + 1
	lo, hi := t.lowerBound(first), t.upperBound(last)
	fresh := width
	for _, e := range t.buf[t.head+lo : t.head+hi] {
		if e.state != None {
			fresh--
		}
	}
	if fresh == 0 {
		return 0, false
	}
	if width-(hi-lo) > 0 {
		// Compaction in reserve may squeeze out tombstones of the range,
		// so reserve for every fresh sequence and recount afterwards.
		t.reserve(fresh)
		lo, hi = t.lowerBound(first), t.upperBound(last)
	}
	slots := width - (hi - lo) // entries that do not exist yet, even as tombstones
	if slots > 0 {
		end := len(t.buf)
		t.buf = t.buf[:end+slots]
		copy(t.buf[t.head+hi+slots:], t.buf[t.head+hi:end])
	}
	due := addSat(r, t.backoff())
	// Fill [lo, hi+slots) backwards, merging the old entries of the range
	// (at [lo, hi) before the shift) with new ones.
	w, j := t.head+hi+slots-1, t.head+hi-1
	for s := last; ; s-- {
		if j >= t.head+lo && t.buf[j].seq == s {
			e := t.buf[j]
			j--
			if e.state == None {
				e = entry{seq: s, due: due, state: BackOff}
			}
			t.buf[w] = e
		} else {
			t.buf[w] = entry{seq: s, due: due, state: BackOff}
		}
		w--
		if s == first {
			break
		}
	}
	t.live += fresh
	return due, true
}

// Repaired stops tracking seq because its data arrived (ODATA, RDATA or FEC
// reconstruction). A sequence given up for Overflow but not yet reported is
// withdrawn from the report. Unknown seq: no-op.
func (t *Tracker) Repaired(seq uint64) {
	if i, ok := t.find(seq); ok {
		t.kill(i)
		t.stats.Repaired++
		t.trim()
		return
	}
	if len(t.pending.s) > 0 {
		t.pending.remove(seq, seq)
		t.limitPending()
	}
}

// NCF records an NCF for seq, or a NAK for seq overheard from another
// receiver (both mean the source knows; RFC 3208 §5.3): from BACK_OFF (our
// NAK is suppressed) or WAIT_NCF the sequence moves to WAIT_DATA, due at
// now+RdataIvl; a repeat in WAIT_DATA pushes that deadline to now+RdataIvl.
// (With RdataFirst, the wait is RdataFirst doubled once per WAIT_DATA
// time-out the sequence has had, at most RdataIvl.) Retry counters are not
// touched.
//
// It returns false if seq is not tracked; the caller may then call Missing,
// for example for an NCF beyond the highest sequence it has seen (OpenPGM
// treats such an NCF as revealing a gap), followed by NCF again.
func (t *Tracker) NCF(now time.Time, seq uint64) bool {
	i, ok := t.find(seq)
	if !ok {
		return false
	}
	r := t.rel(now)
	e := &t.buf[i]
	if e.state == BackOff {
		t.stats.Suppressed++
	}
	t.stats.NCFs++
	e.state = WaitData
	e.due = addSat(r, t.rdataWait(e.data))
	t.schedule(e.due, seq, seq)
	return true
}

// Forget stops tracking every sequence < before, silently, including
// sequences given up for Overflow and not yet reported. The caller decides
// what that means, typically that the source's advertised trail passed them,
// which the caller reports as loss itself.
func (t *Tracker) Forget(before uint64) {
	if before == 0 {
		return
	}
	if len(t.pending.s) > 0 {
		t.pending.remove(0, before-1)
	}
	if t.live == 0 {
		return
	}
	end := t.head + t.lowerBound(before)
	for i := t.head; i < end; i++ {
		if t.buf[i].state != None {
			t.kill(i)
			t.stats.Forgotten++
		}
	}
	t.trim()
}

// Reset stops tracking everything, silently, and drops unreported losses;
// the configuration, generator, statistics and memory are kept. Use it when
// the source restarts.
func (t *Tracker) Reset() {
	t.stats.Forgotten += uint64(t.live)
	t.buf = t.buf[:0]
	t.head, t.live = 0, 0
	t.timers, t.lastPush = t.timers[:0], -1
	t.pending.s = t.pending.s[:0]
}

// Advance fires everything due at or before now and returns naks and lost
// with the results appended:
//
//   - BACK_OFF expired: the sequence must be NAKed now; it is appended to
//     naks and moves to WAIT_NCF, due at now+RepeatIvl.
//   - WAIT_NCF expired: its NCF retry count grows; at NCFRetries it is given
//     up (NCFRetriesExceeded), else it goes back to BACK_OFF.
//   - WAIT_DATA expired: its data retry count grows; at DataRetries it is
//     given up (DataRetriesExceeded), else it goes back to BACK_OFF.
//
// Counts are cumulative per sequence, as in OpenPGM. Sequences going back to
// BACK_OFF in one call share one fresh random back-off, so their repeats
// leave in one NAK list (OpenPGM draws one per sequence). The NAKs appended
// are in increasing order. Sequences given up, including those given up for
// Overflow since the last call, are removed and appended to lost in
// increasing order, consecutive ones with the same reason merged into one
// Lost. Entries already in naks and lost are left alone.
//
// Advance does not allocate when naks and lost have room. It costs O(1) when
// nothing is due, and O(k log n) to fire k of n tracked sequences.
func (t *Tracker) Advance(now time.Time, naks []uint64, lost []Lost) ([]uint64, []Lost) {
	r := t.rel(now)
	if len(t.pending.s) == 0 && (len(t.timers) == 0 || t.timers[0].due > r) {
		return naks, lost
	}
	start := len(naks)
	retried, dead := t.retried[:0], t.dead[:0]
	var retry int64 // shared deadline of the retries, drawn on first use
	drawn := false
	for len(t.timers) > 0 && t.timers[0].due <= r {
		tm := t.pop()
		for i := t.head + t.lowerBound(tm.first); i < len(t.buf) && t.buf[i].seq <= tm.last; i++ {
			e := &t.buf[i]
			if e.state == None || e.due != tm.due {
				continue // removed, or rescheduled since: another timer's
			}
			var reason Reason
			switch e.state {
			case BackOff:
				naks = append(naks, e.seq)
				e.state = WaitNCF
				e.due = addSat(r, t.cfg.repeat)
				continue
			case WaitNCF:
				if e.ncf++; int(e.ncf) >= t.cfg.ncfRetries {
					reason = NCFRetriesExceeded
				}
			case WaitData:
				if e.data++; int(e.data) >= t.cfg.dataRetries {
					reason = DataRetriesExceeded
				}
			}
			if reason != 0 {
				dead = append(dead, Lost{First: e.seq, Last: e.seq, Reason: reason})
				t.kill(i)
				continue
			}
			if !drawn {
				retry, drawn = addSat(r, t.backoff()), true
			}
			e.state = BackOff
			e.due = retry
			retried = append(retried, e.seq)
		}
	}
	t.trim()

	// Timers popped in deadline order: sort what they produced by sequence.
	fired := naks[start:]
	slices.Sort(fired)
	t.stats.NAKs += uint64(len(fired))
	t.scheduleRuns(addSat(r, t.cfg.repeat), fired)
	slices.Sort(retried)
	t.scheduleRuns(retry, retried)

	// Merge the timed-out sequences with the Overflow ranges, in order.
	slices.SortFunc(dead, func(a, b Lost) int { return cmp.Compare(a.First, b.First) })
	base := len(lost)
	p := 0
	for _, d := range dead {
		for ; p < len(t.pending.s) && t.pending.s[p].first < d.First; p++ {
			lost = t.report(lost, base, t.pending.s[p].first, t.pending.s[p].last, Overflow)
		}
		lost = t.report(lost, base, d.First, d.Last, d.Reason)
	}
	for ; p < len(t.pending.s); p++ {
		lost = t.report(lost, base, t.pending.s[p].first, t.pending.s[p].last, Overflow)
	}
	t.pending.s = t.pending.s[:0]
	t.retried, t.dead = retried[:0], dead[:0]
	return naks, lost
}

// rdataWait is the wait for a repair after an NCF, for a sequence that
// has had data WAIT_DATA time-outs so far: RdataFirst doubled that many
// times, at most RdataIvl.
func (t *Tracker) rdataWait(data uint16) int64 {
	w := t.cfg.rdataFirst
	for range data {
		if w >= t.cfg.rdata {
			break
		}
		w *= 2
	}
	return min(w, t.cfg.rdata)
}

// report appends [first, last] to lost, merging it into the previous Lost
// of this call when that one has the same reason and ends at first-1.
func (t *Tracker) report(lost []Lost, base int, first, last uint64, reason Reason) []Lost {
	n := last - first + 1
	t.stats.Lost += n
	switch reason {
	case NCFRetriesExceeded:
		t.stats.LostNCFRetries += n
	case DataRetriesExceeded:
		t.stats.LostDataRetries += n
	case Overflow:
		t.stats.LostOverflow += n
	}
	if k := len(lost) - 1; k >= base {
		if l := &lost[k]; l.Reason == reason && l.Last != math.MaxUint64 && l.Last+1 == first {
			l.Last = last
			return lost
		}
	}
	return append(lost, Lost{First: first, Last: last, Reason: reason})
}

// NextDeadline returns the earliest time at which Advance has work: a timer
// expiring, or losses to report (then it is the time they were given up,
// normally already past). It returns the zero Time if nothing is tracked and
// nothing is left to report. It costs amortized O(log n): it may discard
// timers made stale by Repaired, NCF or Forget.
func (t *Tracker) NextDeadline() time.Time {
	t.topValid()
	d := int64(never)
	if len(t.timers) > 0 {
		d = t.timers[0].due
	}
	if len(t.pending.s) > 0 && t.pendingSince < d {
		d = t.pendingSince
	}
	if d == never {
		return time.Time{}
	}
	return t.epoch.Add(time.Duration(d))
}

// Len returns the number of sequences tracked.
func (t *Tracker) Len() int { return t.live }

// Tracking reports whether seq is tracked.
func (t *Tracker) Tracking(seq uint64) bool {
	_, ok := t.find(seq)
	return ok
}

// State returns the state of seq, or None if it is not tracked.
func (t *Tracker) State(seq uint64) State {
	if i, ok := t.find(seq); ok {
		return t.buf[i].state
	}
	return None
}

// Stats returns the cumulative counters.
func (t *Tracker) Stats() Stats { return t.stats }

// rel converts now to the internal time base, fixing the epoch on first use.
func (t *Tracker) rel(now time.Time) int64 {
	if !t.hasEpoch {
		t.epoch, t.hasEpoch = now, true
	}
	return int64(now.Sub(t.epoch))
}

// backoff draws a back-off uniformly in [MinBackoff, BackoffIvl).
func (t *Tracker) backoff() int64 {
	const lo = int64(MinBackoff)
	if t.cfg.backoff <= lo {
		return lo
	}
	return lo + t.rng.Int64N(t.cfg.backoff-lo)
}

// addSat returns a+d (d >= 0), saturating below never.
func addSat(a, d int64) int64 {
	if a > never-1-d {
		return never - 1
	}
	return a + d
}

// lowerBound returns the index, relative to head, of the first entry with
// seq >= s.
func (t *Tracker) lowerBound(s uint64) int {
	e := t.buf[t.head:]
	lo, hi := 0, len(e)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if e[m].seq < s {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// upperBound returns the index, relative to head, of the first entry with
// seq > s.
func (t *Tracker) upperBound(s uint64) int {
	e := t.buf[t.head:]
	lo, hi := 0, len(e)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if e[m].seq <= s {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// find returns the absolute index of the live entry for seq.
func (t *Tracker) find(seq uint64) (int, bool) {
	if t.live == 0 || seq < t.buf[t.head].seq || seq > t.buf[len(t.buf)-1].seq {
		return 0, false
	}
	i := t.head + t.lowerBound(seq)
	if i < len(t.buf) && t.buf[i].seq == seq && t.buf[i].state != None {
		return i, true
	}
	return 0, false
}

// kill turns the live entry at absolute index i into a tombstone. The
// caller calls trim afterwards.
func (t *Tracker) kill(i int) {
	t.buf[i].state = None
	t.live--
}

// trim drops tombstones from both ends, so that the first and last entries
// are live.
func (t *Tracker) trim() {
	if t.live == 0 {
		t.buf, t.head = t.buf[:0], 0
		return
	}
	for t.buf[t.head].state == None {
		t.head++
	}
	n := len(t.buf)
	for t.buf[n-1].state == None {
		n--
	}
	t.buf = t.buf[:n]
}

// drop removes the tracked sequences in [first, last] silently; the caller
// accounts for them.
func (t *Tracker) drop(first, last uint64) {
	if t.live == 0 {
		return
	}
	lo, hi := t.head+t.lowerBound(first), t.head+t.upperBound(last)
	for i := lo; i < hi; i++ {
		if t.buf[i].state != None {
			t.kill(i)
		}
	}
	t.trim()
}

// evictOldest gives up the k oldest tracked sequences for Overflow.
func (t *Tracker) evictOldest(k int, r int64) {
	for i := t.head; k > 0 && i < len(t.buf); i++ {
		if t.buf[i].state == None {
			continue
		}
		s := t.buf[i].seq
		t.kill(i)
		t.giveUp(s, s, r)
		k--
	}
	t.trim()
}

// giveUp records [first, last] (untracked) as lost for Overflow, to be
// reported by the next Advance.
func (t *Tracker) giveUp(first, last uint64, r int64) {
	if len(t.pending.s) == 0 || r < t.pendingSince {
		t.pendingSince = r
	}
	t.pending.add(first, last)
}

// limitPending keeps the unreported Overflow ranges within pendingCap. It is
// reached only if the caller makes about MaxPending separate overflows
// without calling Advance; the two closest ranges are then merged, and the
// hole between them, tracked or not, is reported lost too.
func (t *Tracker) limitPending() {
	for len(t.pending.s) > t.pendingCap {
		i := t.pending.narrowestGap()
		a, b := t.pending.s[i], t.pending.s[i+1]
		t.drop(a.last+1, b.first-1)
		t.pending.s[i].last = b.last
		t.pending.s = append(t.pending.s[:i+1], t.pending.s[i+2:]...)
		t.coarse++
	}
}

// reserve makes room to append n entries without reallocating more than
// needed. It compacts tombstones away first and grows the array only if the
// live entries fill more than half of it, which keeps compaction amortized
// O(1) per entry. The array never exceeds 2×MaxPending (live <= MaxPending
// and n <= MaxPending whenever this is called).
func (t *Tracker) reserve(n int) {
	if cap(t.buf)-len(t.buf) >= n {
		return
	}
	limit := 2 * t.cfg.maxPending
	need := t.live + n
	if need <= cap(t.buf) && (2*t.live <= cap(t.buf) || cap(t.buf) >= limit) {
		t.compact(t.buf[:0])
		return
	}
	size := max(need, min(2*cap(t.buf), limit), 16)
	t.compact(make([]entry, 0, size))
}

// compact copies the live entries to dst (which may alias buf) and makes it
// the new array.
func (t *Tracker) compact(dst []entry) {
	for _, e := range t.buf[t.head:] {
		if e.state != None {
			dst = append(dst, e)
		}
	}
	t.buf, t.head = dst, 0
}
