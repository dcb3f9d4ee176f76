package session

import (
	"math/bits"
	"net/netip"
	"time"

	"github.com/relmcast/relmcast/internal/wire"
	"github.com/relmcast/relmcast/nak"
)

// source is a receiver's state for one sender session (TSI): its receive
// window, NAK state and liveness.
//
// Sequence numbers are extended to 64 bits relative to the lead, so the
// window arithmetic never wraps; uint32(q) gives the wire number back.
type source struct {
	tsi   wire.TSI
	dport uint16     // data-destination port of its packets (ReceiverConfig.BatchDPort)
	addr  netip.Addr // IP source address of its first packet
	nla   netip.Addr // path NLA from its SPMs: where NAKs go
	group netip.Addr

	lastHeard time.Time
	packets   uint8 // packets received, counted up to 2
	haveSPM   bool
	spmSeq    uint32
	spmrAt    time.Time // when to ask for an SPM; zero: not pending
	// resetSeen: an SPM said the sequence numbers started over, with SPM
	// sequence number resetSPM; a second one confirms (sequenceReset).
	resetSeen bool
	resetSPM  uint32
	// dportSeen: an SPM of s's TSI came to the other dport, with SPM
	// sequence number dportSPM; a second one confirms (dportRestart).
	dportSeen bool
	dportSPM  uint32

	started bool
	joined  uint64 // first number of our window (late join): nothing before it is ours
	// delivered: an event was delivered, so no fragment at the head can
	// belong to a message that began before joined.
	delivered bool
	head      uint64 // next number to deliver
	lead      uint64 // highest number seen or advertised
	// ring holds slots for numbers in [head, lead]; its length is a power
	// of two and number q lives at q & (len-1).
	ring []slot
	// mem is the capacity of the payload buffers of ring and pool, at
	// most budget after each packet (trim).
	mem, budget int
	// pool holds the buffers of delivered or dropped data for the next
	// packets, while mem is at most half the budget and the pool has
	// fewer buffers than the ring has slots: a window that holds data
	// behind a hole then reuses them whichever slot they come from,
	// instead of allocating one per packet once the ring outgrows half
	// the budget.
	pool [][]byte
	// A pending skip: numbers [skipFirst, skipFirst+skipN) that left the
	// window unseen or undelivered, to be reported lost before head.
	skipFirst, skipN uint64
	skipReason       LossReason
	lastReason       LossReason // reason of the last loss, for orphaned fragments

	nak *nak.Tracker
	// nakPass: the next NAK pass is not before this (nakCoalesce).
	nakPass time.Time

	fin     bool // the source sent OPT_FIN
	closing bool // no new data is taken; removed once drained
	// closeReason is the loss reason of what was missing at close (0 at
	// FIN: nothing was); a message left incomplete at the lead is lost
	// for it.
	closeReason LossReason
	gone        GoneReason // reported when drained (0: removed silently, restart)
	announced   bool       // EventSourceNew/Restart delivered
	removed     bool       // last event delivered; sweep forgets it

	prev, successor *source // restart chain: successor waits for prev
	restartOf       wire.TSI
	// trail is the highest valid trail the session advertised (extended;
	// 0: none yet): where its first packet must be for it to still send
	// one marked OPT_SYN (Receiver.synRestart).
	trail uint64
	// stale identifies the FIN SPMs of the session this one replaced
	// with the same TSI (their last SPM number and final lead), so that
	// late ones do not end this one.
	stale staleFIN

	fec *rxFEC // nil until an SPM announces FEC

	st         srcCounters // per-source counters (Receiver.Sources)
	firstHeard time.Time   // its first packet
}

// staleFIN identifies the FIN SPMs of a session replaced by one with the
// same TSI: numbered from seq on, advertising lead.
type staleFIN struct {
	ok   bool
	seq  uint32
	lead uint32
}

// staleFIN reports whether the FIN SPM p belongs to the session that s
// replaced (see source.stale). A new session's own FIN SPM would have to
// advertise the same lead as the old one's last, by chance.
func (s *source) staleFIN(p *wire.Packet) bool {
	return s.stale.ok && p.Lead == s.stale.lead && int32(p.Seq-s.stale.seq) >= 0
}

// reset reports whether the SPM p (without OPT_FIN), for the TSI of a
// removed session, starts a new session. After its FIN a session sends
// only FIN SPMs, so one numbered from its last on is new; one numbered
// back may be a straggler from before the FIN, so, as sequenceReset does
// for a live session, it takes two in a row, advertising a lead other
// than the final one. Without any SPM of the old session, one suffices.
func (t *tomb) reset(p *wire.Packet) bool {
	switch {
	case !t.haveSPM:
		return true
	case int32(p.Seq-t.spmSeq) >= 0:
		return t.fin
	}
	if ext(t.ref, p.Lead) == t.lead {
		t.resetSeen = false
		return false
	}
	if t.resetSeen && int32(p.Seq-t.resetSPM) > 0 {
		return true
	}
	t.resetSeen, t.resetSPM = true, p.Seq
	return false
}

type slotState uint8

const (
	slotMissing slotState = iota // not (yet) received
	slotHave
	slotLost // given up; reported when delivery reaches it
)

type slot struct {
	state     slotState
	reason    LossReason
	frag      bool
	fragFirst uint64 // extended first sequence number of its message
	fragOff   uint32
	fragLen   uint32
	batchN    uint16 // messages packed in data (a batch); 0: one message
	data      []byte // payload copy; capacity reused
	held      bool   // a NAK was held back once for FEC
	pnaks     uint8  // parity NAK rounds that named this number
	// gapAt is when this number was found missing (Receiver.rel; 0: it
	// was not), for the repair latency.
	gapAt int64
}

func (sl *slot) reset() {
	sl.state, sl.reason, sl.frag, sl.held, sl.pnaks, sl.gapAt, sl.batchN = slotMissing, 0, false, false, 0, 0, 0
}

// padding reports whether the slot, number q, holds a FEC padding TPDU:
// empty, with OPT_FRAGMENT {First: q, Offset: 0, Length: 1} (FECConfig).
func (sl *slot) padding(q uint64) bool {
	return sl.frag && len(sl.data) == 0 && sl.fragFirst == q && sl.fragOff == 0 && sl.fragLen == 1
}

// start defines the window at the first packet: q is the first number we
// will deliver.
func (s *source) start(q uint32) {
	base := uint64(1)<<40 | uint64(q) // far from zero, so q-1 never underflows
	s.started = true
	s.joined, s.head, s.lead = base, base, base-1
}

// ext extends a wire sequence number to 64 bits, as the number nearest to
// the lead.
func (s *source) ext(q uint32) uint64 { return ext(s.lead, q) }

func ext(ref uint64, q uint32) uint64 {
	return uint64(int64(ref) + int64(int32(q-uint32(ref))))
}

func (s *source) slot(q uint64) *slot { return &s.ring[q&uint64(len(s.ring)-1)] }

// confirmed reports that the source has sent an SPM and a second packet:
// it is not evicted for a new source (Receiver.admit).
func (s *source) confirmed() bool { return s.haveSPM && s.packets >= 2 }

// free resets a slot whose data was delivered or dropped, moving its
// buffer to the pool (see source.pool) or letting it go.
func (s *source) free(sl *slot) {
	sl.reset()
	if sl.data == nil {
		return
	}
	if s.mem <= s.budget/2 && len(s.pool) < len(s.ring) {
		s.pool = append(s.pool, sl.data[:0])
	} else {
		s.mem -= cap(sl.data)
	}
	sl.data = nil
}

// buffer returns a pooled buffer for a new packet (nil: none pooled).
func (s *source) buffer() []byte {
	n := len(s.pool)
	if n == 0 {
		return nil
	}
	b := s.pool[n-1]
	s.pool[n-1] = nil
	s.pool = s.pool[:n-1]
	return b
}

// trim brings the buffers held down to the budget: first the pooled
// ones, then the oldest undelivered data, which is reported lost
// (LossOverrun).
func (s *source) trim() {
	for i, b := range s.pool {
		s.mem -= cap(b)
		s.pool[i] = nil
	}
	s.pool = s.pool[:0]
	for s.mem > s.budget && s.head <= s.lead {
		s.skipTo(s.head+1, LossOverrun)
	}
}

// grow makes the ring hold at least n numbers from head.
func (s *source) grow(n uint64) {
	if n <= uint64(len(s.ring)) {
		return
	}
	size := uint64(1) << bits.Len64(n-1)
	ring := make([]slot, size)
	s.mem = 0
	for _, b := range s.pool {
		s.mem += cap(b)
	}
	for q := s.head; q <= s.lead; q++ {
		sl := s.slot(q)
		ring[q&(size-1)] = *sl
		s.mem += cap(sl.data)
	}
	s.ring = ring
}

// consume moves head past n numbers that were delivered (or reported),
// after the pending skip.
func (s *source) consume(n uint64) {
	s.skipN = 0
	for range n {
		s.free(s.slot(s.head))
		s.head++
	}
}

// skipTo drops everything before h from the window; it is reported as one
// loss when delivery reaches it.
func (s *source) skipTo(h uint64, reason LossReason) {
	if h <= s.head {
		return
	}
	if s.skipN == 0 {
		s.skipFirst, s.skipReason = s.head, reason
	}
	s.skipN += h - s.head
	for q := s.head; q <= s.lead && q < h; q++ {
		s.free(s.slot(q))
	}
	s.nak.Forget(h)
	s.head = h
	s.lead = max(s.lead, h-1)
}

// markLost gives up the numbers in [first, last] that are still missing.
func (s *source) markLost(first, last uint64, reason LossReason) {
	for q := max(first, s.head); q <= last && q <= s.lead; q++ {
		if sl := s.slot(q); sl.state == slotMissing {
			sl.state, sl.reason = slotLost, reason
		}
	}
}

// close ends the session: nothing new is taken, and what is missing is
// lost for reason. Its remaining events are still delivered.
func (s *source) close(reason LossReason, gone GoneReason) {
	if s.started {
		s.markLost(s.head, s.lead, reason)
		s.nak.Forget(s.lead + 1)
	}
	s.closing, s.gone, s.closeReason = true, gone, reason
	s.spmrAt = time.Time{}
}

// drained reports that every event of the window has been delivered.
func (s *source) drained() bool { return s.head > s.lead && s.skipN == 0 }

// unicast is where NAKs go: the SPM's path NLA, or until one arrives the
// address the source's packets come from (OpenPGM instead declares the
// loss at once when it has no NLA).
func (s *source) unicast() netip.Addr {
	if s.nla.IsValid() {
		return s.nla
	}
	return s.addr
}

// lossAt reports the first n numbers from head as lost.
func (s *source) lossAt(ev *Event, n uint64, reason LossReason) uint64 {
	ev.Kind = EventLoss
	ev.First, ev.Last = uint32(s.head), uint32(s.head+n-1)
	ev.Lost = n
	ev.LossReason = reason
	s.lastReason = reason
	return n
}
