package session

import (
	"net/netip"
	"time"

	"github.com/relmcast/relmcast/internal/wire"
)

// LatencyBounds are the upper bounds of the buckets of a
// LatencyHistogram: a 1-2-5 series from 100µs to 10s, so that a LAN
// repair (a millisecond or two) and a WAN one (hundreds of milliseconds)
// both land in buckets narrow enough for a useful p50 and p99. A last,
// unbounded bucket takes what is slower.
var LatencyBounds = [LatencyBuckets - 1]time.Duration{
	100 * time.Microsecond, 200 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond,
	10 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second,
}

// LatencyBuckets is the number of buckets of a LatencyHistogram, the
// unbounded one included.
const LatencyBuckets = 17

// LatencyHistogram counts durations in the fixed buckets of
// LatencyBounds. It is a plain value: Observe allocates nothing and a copy
// is a snapshot.
type LatencyHistogram struct {
	// Counts[i] counts the samples in (LatencyBounds[i-1], LatencyBounds[i]]
	// (not cumulative); the last one those above 10s.
	Counts [LatencyBuckets]uint64
	Count  uint64        // samples
	Sum    time.Duration // of all samples
	Max    time.Duration // the largest sample
}

// Observe adds one sample.
func (h *LatencyHistogram) Observe(d time.Duration) {
	d = max(d, 0)
	i := 0
	for i < len(LatencyBounds) && d > LatencyBounds[i] {
		i++
	}
	h.Counts[i]++
	h.Count++
	h.Sum += d
	h.Max = max(h.Max, d)
}

// Quantile estimates the q-quantile (0 < q <= 1) of the samples as
// Prometheus's histogram_quantile does: by linear interpolation inside
// the bucket where it falls, never beyond the largest sample. It is 0
// without samples.
func (h *LatencyHistogram) Quantile(q float64) time.Duration {
	if h.Count == 0 {
		return 0
	}
	rank := q * float64(h.Count)
	var cum uint64
	for i, n := range h.Counts {
		if n == 0 || float64(cum+n) < rank {
			cum += n
			continue
		}
		lo := time.Duration(0)
		if i > 0 {
			lo = LatencyBounds[i-1]
		}
		hi := h.Max
		if i < len(LatencyBounds) {
			hi = min(LatencyBounds[i], h.Max)
		}
		if hi <= lo {
			return hi
		}
		frac := (rank - float64(cum)) / float64(n)
		return lo + time.Duration(frac*float64(hi-lo))
	}
	return h.Max
}

// SourceState is where a source is in its life on a receiver.
type SourceState uint8

const (
	// SourceActive: the source is sending (or silent, but not yet expired).
	SourceActive SourceState = iota + 1
	// SourceFinishing: it sent OPT_FIN; repairs of its last holes may
	// still come.
	SourceFinishing
	// SourceClosing: it is gone (expired, finished, evicted) or replaced
	// by a restart; its last events wait to be read.
	SourceClosing
)

func (s SourceState) String() string {
	switch s {
	case SourceActive:
		return "active"
	case SourceFinishing:
		return "finishing"
	case SourceClosing:
		return "closing"
	}
	return "unknown"
}

// srcCounters are a source's counters, kept by the Receiver.
type srcCounters struct {
	messages, bytes       uint64
	lossEvents, lost      uint64
	nakPackets, naks      uint64
	parityNAKs            uint64
	ncfs                  uint64
	repairs, fecRecovered uint64
	duplicates            uint64
	latency               LatencyHistogram
}

// SourceStats are one source's counters and gauges on a receiver.
type SourceStats struct {
	TSI       wire.TSI
	Addr      netip.Addr // where NAKs go (Event.Addr)
	State     SourceState
	FirstSeen time.Time // its first packet
	LastSeen  time.Time // its last packet

	Messages   uint64 // messages delivered
	Bytes      uint64 // their bytes
	LossEvents uint64 // EventLoss delivered
	Lost       uint64 // sequence numbers reported lost
	NAKPackets uint64 // NAK packets sent, selective and parity
	NAKs       uint64 // sequence numbers NAKed selectively (first NAKs and repeats)
	ParityNAKs uint64 // transmission groups NAKed with parity NAKs
	// NAKsSuppressed counts holes whose NAK was not needed: another
	// receiver's NAK, confirmed by the source's NCF, came first.
	NAKsSuppressed uint64
	NCFs           uint64 // NCF packets received
	Repairs        uint64 // RDATA that filled a hole
	FECRecovered   uint64 // holes filled by FEC decoding
	Duplicates     uint64 // data already held or delivered

	// Head is the next sequence number to deliver and Lead the highest
	// seen or advertised: the window holds Lead-Head+1 numbers.
	Head, Lead uint32
	// WindowPackets and WindowBytes are what the receive window holds now
	// (numbers from Head to Lead, and payload buffer capacity), of at most
	// WindowMaxPackets and WindowMaxBytes: near the maximum, the
	// application reads too slowly or a repair is slow to come, and the
	// oldest will be lost (LossOverrun).
	WindowPackets, WindowMaxPackets int
	WindowBytes, WindowMaxBytes     int

	// RepairLatency counts, for each hole filled by a repair or by FEC,
	// the time from the packet that revealed it to the one that filled
	// it.
	RepairLatency LatencyHistogram
}

// Sources appends the stats of every source tracked (those closing
// included) to dst, in order of arrival, and returns it. With a dst of
// enough capacity it allocates nothing.
func (r *Receiver) Sources(dst []SourceStats) []SourceStats {
	for _, s := range r.sources {
		st := SourceStats{
			TSI:       s.tsi,
			Addr:      s.unicast(),
			State:     SourceActive,
			FirstSeen: s.firstHeard,
			LastSeen:  s.lastHeard,

			Messages:       s.st.messages,
			Bytes:          s.st.bytes,
			LossEvents:     s.st.lossEvents,
			Lost:           s.st.lost,
			NAKPackets:     s.st.nakPackets,
			NAKs:           s.st.naks,
			ParityNAKs:     s.st.parityNAKs,
			NAKsSuppressed: s.nak.Stats().Suppressed,
			NCFs:           s.st.ncfs,
			Repairs:        s.st.repairs,
			FECRecovered:   s.st.fecRecovered,
			Duplicates:     s.st.duplicates,

			WindowMaxPackets: r.cfg.Window,
			WindowBytes:      s.mem,
			WindowMaxBytes:   s.budget,
			RepairLatency:    s.st.latency,
		}
		switch {
		case s.closing:
			st.State = SourceClosing
		case s.fin:
			st.State = SourceFinishing
		}
		if s.started {
			st.Head, st.Lead = uint32(s.head), uint32(s.lead)
			if s.lead >= s.head {
				st.WindowPackets = int(s.lead - s.head + 1)
			}
		}
		dst = append(dst, st)
	}
	return dst
}

// MaxLateNAKers is how many NAKers of data already gone a Sender keeps
// (SenderStats.LateNAKers).
const MaxLateNAKers = 8

// LateNAKer is a receiver that NAKed sequence numbers no longer in the
// sender's window (or never sent): it is falling behind, or joined a
// source whose window is too short for it.
type LateNAKer struct {
	Addr netip.AddrPort // where its NAKs came from; zero: an empty entry
	NAKs uint64         // sequence numbers it NAKed that were gone
	Last time.Time      // its latest such NAK
}

// lateNAKer counts one out-of-window NAKed number from addr in t, a
// bounded table: when it is full, a new NAKer replaces the one with the
// fewest NAKs (the oldest of those), so the heaviest stay and the newest
// is always there.
func lateNAKer(t *[MaxLateNAKers]LateNAKer, addr netip.AddrPort, now time.Time) {
	victim := 0
	for i := range t {
		e := &t[i]
		if e.Addr == addr && e.NAKs > 0 {
			e.NAKs++
			e.Last = now
			return
		}
		v := &t[victim]
		if e.NAKs < v.NAKs || e.NAKs == v.NAKs && e.Last.Before(v.Last) {
			victim = i
		}
	}
	t[victim] = LateNAKer{Addr: addr, NAKs: 1, Last: now}
}

// rel is now in the receiver's time base for slot.gapAt and the NAKRate
// bucket: nanoseconds since the first time seen, plus one, so that it is
// never 0. It takes the monotonic clock where now has it (time.Sub).
func (r *Receiver) rel(now time.Time) int64 {
	if r.epoch.IsZero() {
		r.epoch = now
	}
	return int64(now.Sub(r.epoch)) + 1
}

// repaired records the repair latency of a hole in slot sl of s, filled
// at now.
func (r *Receiver) repaired(now time.Time, s *source, sl *slot) {
	if sl.gapAt != 0 {
		s.st.latency.Observe(time.Duration(r.rel(now) - sl.gapAt))
	}
}
