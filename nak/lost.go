package nak

import (
	"fmt"
	"math"
)

// Reason says why a sequence was given up.
type Reason uint8

const (
	// NCFRetriesExceeded: NCFRetries NAK cycles timed out without an NCF.
	NCFRetriesExceeded Reason = iota + 1
	// DataRetriesExceeded: DataRetries waits for the repair after an NCF
	// timed out.
	DataRetriesExceeded
	// Overflow: the sequence was among the oldest when tracking it would
	// have exceeded MaxPending (including the older part of a gap wider
	// than MaxPending).
	Overflow
)

func (r Reason) String() string {
	switch r {
	case NCFRetriesExceeded:
		return "NCFRetriesExceeded"
	case DataRetriesExceeded:
		return "DataRetriesExceeded"
	case Overflow:
		return "Overflow"
	}
	return fmt.Sprintf("Reason(%d)", uint8(r))
}

// Lost is a run of consecutive sequences given up for the same reason, as
// reported by [Tracker.Advance]. Both ends are inclusive.
type Lost struct {
	First, Last uint64
	Reason      Reason
}

// Count is the number of sequences in l.
func (l Lost) Count() uint64 { return l.Last - l.First + 1 }

func (l Lost) String() string {
	if l.First == l.Last {
		return fmt.Sprintf("%d(%v)", l.First, l.Reason)
	}
	return fmt.Sprintf("%d-%d(%v)", l.First, l.Last, l.Reason)
}

// span is an inclusive range of sequences.
type span struct{ first, last uint64 }

// spanSet is a sorted set of disjoint, non-adjacent spans. The tracker keeps
// the sequences given up for Overflow here until the next Advance reports
// them: a huge gap costs one span, not one entry per sequence.
type spanSet struct {
	s []span
}

// search returns the index of the first span whose last >= seq.
func (ss *spanSet) search(seq uint64) int {
	lo, hi := 0, len(ss.s)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if ss.s[m].last < seq {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// add inserts [first, last], merging with overlapping or adjacent spans.
func (ss *spanSet) add(first, last uint64) {
	// Spans that end at or after first-1 may touch [first, last].
	lo := 0
	if first > 0 {
		lo = ss.search(first - 1)
	}
	hi := lo
	for hi < len(ss.s) && (last == math.MaxUint64 || ss.s[hi].first <= last+1) {
		hi++
	}
	if lo == hi {
		ss.s = append(ss.s, span{})
		copy(ss.s[lo+1:], ss.s[lo:])
		ss.s[lo] = span{first, last}
		return
	}
	ss.s[lo] = span{min(first, ss.s[lo].first), max(last, ss.s[hi-1].last)}
	ss.s = append(ss.s[:lo+1], ss.s[hi:]...)
}

// remove deletes [first, last] from the set, splitting a span if needed.
func (ss *spanSet) remove(first, last uint64) {
	i := ss.search(first)
	for i < len(ss.s) && ss.s[i].first <= last {
		sp := ss.s[i]
		switch {
		case sp.first >= first && sp.last <= last: // inside: delete
			ss.s = append(ss.s[:i], ss.s[i+1:]...)
		case sp.first < first && sp.last > last: // split in two
			ss.s = append(ss.s, span{})
			copy(ss.s[i+2:], ss.s[i+1:])
			ss.s[i] = span{sp.first, first - 1}
			ss.s[i+1] = span{last + 1, sp.last}
			return
		case sp.first < first: // keep the left part
			ss.s[i].last = first - 1
			i++
		default: // keep the right part
			ss.s[i].first = last + 1
			return
		}
	}
}

// narrowestGap returns i such that the hole between s[i] and s[i+1] is the
// smallest. It needs at least two spans.
func (ss *spanSet) narrowestGap() int {
	best, bestGap := 0, uint64(math.MaxUint64)
	for i := 0; i+1 < len(ss.s); i++ {
		if g := ss.s[i+1].first - ss.s[i].last; g < bestGap {
			best, bestGap = i, g
		}
	}
	return best
}
