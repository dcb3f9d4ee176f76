package nak

// timer says that the tracked sequences in [first, last] whose deadline is
// due (there may be others in the range, with other deadlines) need
// attention at due. The tracker keeps timers in a min-heap by due, so
// Advance only visits what is due and NextDeadline is the top of the heap.
//
// Timers are never updated in place when an entry changes: a new timer is
// pushed, and the old one goes stale. A timer is checked against the entries
// when it reaches the top; one that matches no live entry is dropped. One
// timer covers a whole gap (Missing) or a run of consecutive sequences that
// changed state together (Advance), so a burst costs one timer, not one per
// sequence.
type timer struct {
	due         int64
	first, last uint64
}

// Invariant: every live entry e is covered by a timer t with t.due == e.due
// and t.first <= e.seq <= t.last. Stale timers are bounded: when the heap
// exceeds 2×live+timerSlack timers it is rebuilt from the entries, which is
// amortized O(1) per timer pushed.

// timerSlack is the default Tracker.timerSlack (tests lower it to exercise
// rebuilds).
const timerSlack = 64

// schedule records that the live entries in [first, last] with deadline
// due need a timer. Entries must already carry their new deadline.
func (t *Tracker) schedule(due int64, first, last uint64) {
	if n := t.lastPush; n >= 0 {
		// Consecutive calls for adjacent runs with the same deadline (an
		// NCF list, say) extend the last timer pushed instead.
		if tm := &t.timers[n]; tm.due == due && tm.last != ^uint64(0) && tm.last+1 == first {
			tm.last = last
			return
		}
	}
	if len(t.timers) >= 2*t.live+t.timerSlack {
		t.rebuildTimers() // covers the new deadline too
		return
	}
	t.timers = append(t.timers, timer{due: due, first: first, last: last})
	t.lastPush = t.up(len(t.timers) - 1)
}

// scheduleRuns schedules the sorted sequences seqs, all due at due, one
// timer per run of consecutive numbers.
func (t *Tracker) scheduleRuns(due int64, seqs []uint64) {
	for i := 0; i < len(seqs); {
		j := i + 1
		for j < len(seqs) && seqs[j] == seqs[j-1]+1 {
			j++
		}
		t.schedule(due, seqs[i], seqs[j-1])
		i = j
	}
}

// rebuildTimers replaces the heap with one timer per run of adjacent live
// entries that share a deadline, dropping every stale timer.
func (t *Tracker) rebuildTimers() {
	t.timers = t.timers[:0]
	var cur timer
	open := false
	for _, e := range t.buf[t.head:] {
		if e.state == None {
			continue
		}
		if open && e.due == cur.due {
			cur.last = e.seq
			continue
		}
		if open {
			t.timers = append(t.timers, cur)
		}
		cur, open = timer{due: e.due, first: e.seq, last: e.seq}, true
	}
	if open {
		t.timers = append(t.timers, cur)
	}
	for i := len(t.timers)/2 - 1; i >= 0; i-- {
		t.down(i)
	}
	t.lastPush = -1
}

// topValid drops stale timers from the top of the heap until the top
// covers a live entry with its deadline, and narrows the top to start at
// that entry so the same stale entries are not checked twice.
func (t *Tracker) topValid() {
	if t.live == 0 {
		t.timers = t.timers[:0]
		t.lastPush = -1
		return
	}
	for len(t.timers) > 0 {
		tm := &t.timers[0]
		for i := t.head + t.lowerBound(tm.first); i < len(t.buf) && t.buf[i].seq <= tm.last; i++ {
			if e := &t.buf[i]; e.state != None && e.due == tm.due {
				tm.first = e.seq
				return
			}
		}
		t.pop()
	}
}

// pop removes the top timer.
func (t *Tracker) pop() timer {
	top := t.timers[0]
	n := len(t.timers) - 1
	t.timers[0] = t.timers[n]
	t.timers = t.timers[:n]
	if n > 0 {
		t.down(0)
	}
	t.lastPush = -1
	return top
}

func (t *Tracker) up(i int) int {
	h := t.timers
	for i > 0 {
		p := (i - 1) / 2
		if h[p].due <= h[i].due {
			break
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
	return i
}

func (t *Tracker) down(i int) {
	h := t.timers
	for {
		c := 2*i + 1
		if c >= len(h) {
			return
		}
		if r := c + 1; r < len(h) && h[r].due < h[c].due {
			c = r
		}
		if h[i].due <= h[c].due {
			return
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
}
