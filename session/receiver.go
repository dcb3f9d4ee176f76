package session

import (
	"cmp"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/relmcast/relmcast/fec"
	"github.com/relmcast/relmcast/internal/wire"
	"github.com/relmcast/relmcast/nak"
)

// ReceiverConfig configures a Receiver core. The zero value of each field
// means the default given.
type ReceiverConfig struct {
	// DPort is the data-destination port (the UDP port P); downstream
	// packets with another dport are dropped.
	DPort uint16
	// BatchDPort, if not 0, is a second data-destination port accepted on
	// the same UDP port: that of batching sources (BatchDPort(DPort); see
	// BatchConfig). A session keeps the port of its first packet, and its
	// NAKs and SPMRs carry it.
	BatchDPort uint16
	// Group is the multicast group, named in NAKs as the group NLA.
	Group netip.Addr
	// Window bounds the sequence numbers held per source between the next
	// one to deliver and the highest seen: out-of-order data waiting for a
	// repair, and data the application has not read yet. Past it the
	// oldest are dropped and reported as loss (LossOverrun). Default 32768.
	Window int
	// WindowBytes bounds the payload buffers held per source (their
	// capacity, delivered ones kept for reuse included); past it the
	// oldest undelivered data is dropped as LossOverrun, like Window.
	// Default 64 MiB, at least 256 KiB. With Window this bounds a source's
	// memory whatever it sends: packets of 64 KiB cannot make Window
	// packets take 2 GiB.
	WindowBytes int
	// MaxSources bounds the sources tracked at once (not counting those
	// closing, whose last events wait to be read; those are at most as
	// many again). When a packet of a new source finds the table full,
	// the oldest unconfirmed source (one that has not yet sent an SPM and
	// a second packet) is evicted to make room: it is reported gone
	// (GoneEvicted) and counted in SourcesEvicted. A flood of fake
	// sources, one packet each, so never locks out a real one. When every
	// source is confirmed, the new one is refused and counted in
	// SourcesDropped. Default 1024.
	MaxSources int
	// SourceExpiry is how long a source may stay silent (no SPM, data or
	// NCF) before it is reported gone. Default 10s. OpenPGM and ZeroMQ
	// sources send an SPM only every 30 s when idle; use at least 60s
	// with them.
	SourceExpiry time.Duration
	// SPMRDelay is how long after meeting a source through data to wait
	// for its SPM before asking for one with an SPMR. Default 25ms.
	SPMRDelay time.Duration
	// NAK holds the NAK timers and retry limits (package nak defaults).
	NAK nak.Config
	// JoinBackfill: when the first packet seen of a new source is at most
	// this many sequence numbers past the source's advertised trail (a
	// young source, which still holds everything it sent), the window
	// starts at the trail instead. A receiver that started before the
	// source then gets every message even if the first packets arrive out
	// of order. A late joiner to an older source starts at the first
	// packet seen, as OpenPGM does. Default 64; negative means none.
	JoinBackfill int
	// Passive receivers never send NAKs or SPMRs: holes become loss when
	// the NAK timers run out or the source's window passes them.
	Passive bool
	// Seed seeds the NAK back-off randomness.
	Seed uint64
	// FECMaxTSDU is the longest TSDU a FEC source's originals may have for
	// this receiver to decode its groups (longer ones are repaired by NAK
	// only). Default 1448 (MTU 1500, IPv4). FEC needs no other setting:
	// a source announces it in its SPMs (see FECConfig).
	FECMaxTSDU int
	// FECWindow is how many sequence numbers, ending at the newest, the
	// FEC decoder of a source holds groups for; older groups are no longer
	// decoded. It should cover a NAK round trip at the source's packet
	// rate. Default 4096. Memory per FEC source is about FECWindow ×
	// (FECMaxTSDU+14) bytes (6 MB by default).
	FECWindow int
	// NAKRate bounds the NAK packets (selective and parity) this receiver
	// sends, all sources together, in packets per second; NAKBurst is the
	// token bucket's depth. A NAK packet over the limit is not sent and
	// is counted in NAKsLimited; its numbers stay in the NAK machine and
	// are NAKed again at its next retry. This bounds what spoofed packets
	// can make a receiver send to an address of their choosing (an SPM
	// naming a victim as path NLA, then data a window ahead: Window/63 NAK
	// packets per retry). Default 5000 packets/s (about 1.5 MB/s of full
	// NAK lists), burst 1000 (a whole default window NAKed at once fits);
	// negative means unlimited.
	NAKRate  int
	NAKBurst int
}

// minWindowBytes keeps room for a few of the largest packets.
const minWindowBytes = 256 << 10

func (c *ReceiverConfig) setDefaults() {
	if c.Window <= 0 {
		c.Window = 32768
	}
	if c.WindowBytes <= 0 {
		c.WindowBytes = 64 << 20
	}
	c.WindowBytes = max(c.WindowBytes, minWindowBytes)
	if c.MaxSources <= 0 {
		c.MaxSources = 1024
	}
	if c.SourceExpiry <= 0 {
		c.SourceExpiry = 10 * time.Second
	}
	if c.JoinBackfill == 0 {
		c.JoinBackfill = 64
	}
	if c.NAK.MaxPending <= 0 || c.NAK.MaxPending > c.Window {
		c.NAK.MaxPending = c.Window // nothing beyond the window is ever missing
	}
	if c.SPMRDelay <= 0 {
		c.SPMRDelay = 25 * time.Millisecond
	}
	if c.FECMaxTSDU <= 0 || c.FECMaxTSDU > fec.MaxTSDU {
		c.FECMaxTSDU = 1500 - 28 - wire.HeaderLen - wire.DataHeaderLen
	}
	if c.FECWindow <= 0 {
		c.FECWindow = 4096
	}
	if c.NAKRate == 0 {
		c.NAKRate = 5000
	}
	if c.NAKBurst <= 0 {
		c.NAKBurst = max(c.NAKRate/5, 1)
	}
}

// EventKind says what an Event reports.
type EventKind uint8

const (
	// EventData is one message, whole and in order.
	EventData EventKind = iota + 1
	// EventLoss reports sequence numbers that will never be delivered. It
	// comes right after the last message before the hole.
	EventLoss
	// EventSourceNew reports a source seen for the first time; it comes
	// before the source's first message.
	EventSourceNew
	// EventSourceGone reports that a source expired or finished (OPT_FIN);
	// it is the source's last event.
	EventSourceGone
	// EventSourceRestart reports a new session (Source) from the same
	// sender as an earlier one (Prev): same GSI, same address, or the same
	// TSI whose sequence numbers started over (Source == Prev). It takes
	// the place of EventSourceNew, and comes after Prev's last event:
	// Prev's stream ends there, or, for the same TSI started over after
	// Prev finished or expired, ended with its EventSourceGone.
	EventSourceRestart
)

func (k EventKind) String() string {
	switch k {
	case EventData:
		return "data"
	case EventLoss:
		return "loss"
	case EventSourceNew:
		return "source-new"
	case EventSourceGone:
		return "source-gone"
	case EventSourceRestart:
		return "source-restart"
	}
	return "unknown"
}

// LossReason says why sequence numbers were lost.
type LossReason uint8

const (
	// LossWindowPassed: the source's transmit window moved past the hole
	// (its advertised trail), so no repair can come.
	LossWindowPassed LossReason = iota + 1
	// LossRetriesExhausted: the NAKs went unanswered (no NCF or no repair)
	// for the configured number of retries.
	LossRetriesExhausted
	// LossSourceGone: the source expired or finished with the hole open.
	LossSourceGone
	// LossOverrun: the receive window overflowed, because the application
	// did not read fast enough or the source jumped further ahead than the
	// window holds.
	LossOverrun
	// LossSourceRestart: the source restarted with the hole open.
	LossSourceRestart
	// LossMalformed: fragments that do not form a valid message.
	LossMalformed
)

func (r LossReason) String() string {
	switch r {
	case LossWindowPassed:
		return "window-passed"
	case LossRetriesExhausted:
		return "retries-exhausted"
	case LossSourceGone:
		return "source-gone"
	case LossOverrun:
		return "overrun"
	case LossSourceRestart:
		return "source-restart"
	case LossMalformed:
		return "malformed"
	}
	return "unknown"
}

// GoneReason says why a source is gone.
type GoneReason uint8

const (
	GoneExpired GoneReason = iota + 1 // silent for longer than SourceExpiry
	GoneFIN                           // sent OPT_FIN and everything was resolved
	GoneEvicted                       // evicted for a new source (see MaxSources)
)

func (g GoneReason) String() string {
	switch g {
	case GoneExpired:
		return "expired"
	case GoneFIN:
		return "fin"
	case GoneEvicted:
		return "evicted"
	}
	return "unknown"
}

// Event is one item of a receiver's ordered stream. For one source, events
// come in sequence order: SourceNew (or SourceRestart), then Data and Loss
// interleaved exactly as the sequence numbers run, then SourceGone.
type Event struct {
	Kind   EventKind
	Source wire.TSI
	// Addr is the source's unicast address: its SPM path NLA once known,
	// else the IP source address of its packets.
	Addr netip.Addr
	// Data is the message of an EventData. It aliases the core's buffers
	// and is valid only during the Deliver callback.
	Data []byte
	// Batch is, for an EventData from a batched TPDU (BatchConfig), the
	// number of messages Data packs, framed as wire.CheckBatch accepts
	// (split them with wire.NextBatched); 0 for a plain message.
	Batch int
	// First and Last are the wire sequence numbers of the message's
	// TPDUs (EventData) or of the lost ones (EventLoss), inclusive.
	First, Last uint32
	// Lost counts the sequence numbers (TPDUs) lost (EventLoss). Each is at
	// most one message; a fragmented message spans several.
	Lost       uint64
	LossReason LossReason
	GoneReason GoneReason
	// Prev is the earlier session an EventSourceRestart replaces.
	Prev wire.TSI
}

// ReceiverStats are cumulative counters of a Receiver core.
type ReceiverStats struct {
	Packets        uint64 // packets handled
	Messages       uint64 // messages delivered
	Bytes          uint64 // message bytes delivered
	Duplicates     uint64 // data already held or delivered
	Repairs        uint64 // RDATA that filled a hole
	FECRecovered   uint64 // holes filled by FEC decoding (not counted in Repairs)
	FECParity      uint64 // parity packets received and used by the decoder
	FECRejected    uint64 // FEC packets refused or rebuilt invalid (dropped)
	Padding        uint64 // FEC padding TPDUs dropped (not messages)
	NAKPackets     uint64 // NAK packets sent, selective and parity
	NAKs           uint64 // sequence numbers NAKed selectively
	ParityNAKs     uint64 // transmission groups NAKed with parity NAKs
	NCFs           uint64 // NCF packets received
	SPMs           uint64 // SPMs received
	SPMRs          uint64 // SPMRs sent
	LossEvents     uint64
	Lost           uint64 // sequence numbers reported lost
	Sources        int    // sources tracked now
	SourcesDropped uint64 // packets of new sources refused: MaxSources confirmed sources
	SourcesEvicted uint64 // unconfirmed sources evicted for new ones
	NAKsLimited    uint64 // NAK packets not sent: over NAKRate (NAKed again at the next retry)
	BatchMalformed uint64 // batched TPDUs whose framing is invalid (dropped)
	// Dropped: packets ignored: wrong port, stale, unknown type, parity
	// without FEC, data more than a window past the lead (see onData).
	Dropped uint64
}

// Receiver is the sans-IO core of a PGM receiver: all sources on one
// group and port. It turns packets into an ordered event stream per
// source, and NAKs and SPMRs to send.
type Receiver struct {
	cfg     ReceiverConfig
	rng     *rand.Rand
	sources []*source // in order of arrival, for deterministic delivery
	closing int       // sources closing: not yet swept
	byTSI   map[wire.TSI]*source
	// tombs remembers sources reported gone, so their late packets (the
	// 2nd and 3rd FIN SPM, stray repairs) do not resurrect them.
	tombs     map[wire.TSI]tomb
	tombsNext time.Time // no tombstone expires before (zero: unknown)
	out       outQueue
	stats     ReceiverStats
	now       time.Time // latest time seen, for tombstone expiry
	epoch     time.Time // first time seen: the time base of slot.gapAt

	naks  []uint64
	lost  []nak.Lost
	rec   []fec.Recovered                 // FEC decoder output
	pnak  []uint32                        // parity NAK entries being built
	codes [fec.MaxGroupSize + 1]*fec.Code // shared per group size

	apdu []byte // reassembly buffer
	ev   Event  // the event handed to Deliver's callback (reused: no allocation)

	nakBucket txBucket // NAKRate, in packets; time is rel(now)
}

// tomb is what a removed session leaves: enough to tell its late packets
// from those of a new session with the same TSI (sender restarted with
// the same GSI and port).
type tomb struct {
	until time.Time
	lead  uint64 // extended relative to ref, as the source's numbers were
	ref   uint64
	trail uint64 // highest trail seen (extended; 0: none): see synRestart
	// The session's last SPM, and a first SPM numbered back from it
	// (sequenceReset, as for a live source).
	haveSPM   bool
	spmSeq    uint32
	resetSeen bool
	resetSPM  uint32
	fin       bool   // it ended with OPT_FIN
	dport     uint16 // its data-destination port
}

// NewReceiver returns a Receiver core.
func NewReceiver(cfg ReceiverConfig) *Receiver {
	cfg.setDefaults()
	r := &Receiver{
		cfg:   cfg,
		rng:   rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		byTSI: make(map[wire.TSI]*source),
		tombs: make(map[wire.TSI]tomb),
	}
	if cfg.NAKRate > 0 {
		r.nakBucket = newTxBucket(int64(cfg.NAKRate), cfg.NAKBurst)
	}
	return r
}

// nakAllowed takes one NAK packet from the NAKRate bucket, or counts it
// in NAKsLimited and reports false.
func (r *Receiver) nakAllowed() bool {
	// rel, not UnixNano: the wall clock may step back (NTP), and the
	// bucket would then refuse every NAK until it caught up again.
	if r.nakBucket.take(r.rel(r.now), 1) {
		return true
	}
	r.stats.NAKsLimited++
	return false
}

// Stats returns the counters.
func (r *Receiver) Stats() ReceiverStats {
	s := r.stats
	s.Sources = len(r.sources)
	return s
}

// HandlePacket processes one parsed packet that arrived from the IP
// address from. Upstream packets (NAK, SPMR from other receivers) and
// packets of other ports are dropped.
func (r *Receiver) HandlePacket(now time.Time, p *wire.Packet, from netip.Addr) {
	r.now = now
	r.stats.Packets++
	if !p.Type.Downstream() || p.DPort != r.cfg.DPort && (r.cfg.BatchDPort == 0 || p.DPort != r.cfg.BatchDPort) {
		r.stats.Dropped++
		return
	}
	switch p.Type {
	case wire.TypeODATA, wire.TypeRDATA, wire.TypeSPM, wire.TypeNCF:
	default:
		r.stats.Dropped++
		return
	}
	if p.Options&wire.OptParity != 0 {
		r.onParity(now, p) // never into the receive window: see receiver_fec.go
		return
	}
	tsi := p.TSI()
	s := r.byTSI[tsi]
	if s != nil && s.dport != p.DPort {
		// A session keeps the dport of its first packet: this is another
		// session of the TSI (restarted with batching switched on or
		// off), or a forgery.
		if !r.dportRestart(s, p) {
			r.stats.Dropped++
			return
		}
		s = r.restartSession(now, s, from, s.tsi, true)
	} else if s != nil && p.Type == wire.TypeSPM {
		s.dportSeen = false
	}
	if s == nil {
		s = r.newSource(now, tsi, p, from)
		if s == nil {
			return
		}
	} else if p.Type == wire.TypeSPM && p.FIN && s.staleFIN(p) {
		r.stats.Dropped++ // a late FIN SPM of the session s replaced
		return
	} else if p.Type == wire.TypeSPM && r.sequenceReset(s, p) || r.synRestart(s, p) {
		s = r.restartSession(now, s, from, s.tsi, p.Type == wire.TypeSPM)
	}
	if s.dport == 0 { // a new session
		s.dport = p.DPort
	}
	s.lastHeard = now
	if s.packets < 2 {
		s.packets++
	}
	switch p.Type {
	case wire.TypeODATA, wire.TypeRDATA:
		r.onData(now, s, p)
	case wire.TypeSPM:
		r.onSPM(now, s, p)
	case wire.TypeNCF:
		r.onNCF(now, s, p)
	}
	r.maybeFinish(s)
}

// newSource creates the state of a source at its first packet, or returns
// nil if the packet must be ignored.
func (r *Receiver) newSource(now time.Time, tsi wire.TSI, p *wire.Packet, from netip.Addr) *source {
	var restartOf *tomb
	if t, ok := r.tombs[tsi]; ok {
		if now.Before(t.until) {
			// Late packets of a finished session (the 2nd and 3rd FIN SPM,
			// repairs, reordered data) are ignored. A new session with the
			// same TSI is told from them by what the old one cannot send:
			// SPMs numbered back from its last (two, as for a live source,
			// see sequenceReset), OPT_SYN data that is not its own first
			// packet (synRestart), data beyond its lead, or data and SPMs
			// to the other dport (batching switched on or off).
			var news bool
			switch {
			case t.dport != 0 && p.DPort != t.dport:
				news = p.Type != wire.TypeNCF && !(p.Type == wire.TypeSPM && p.FIN)
			case p.Type == wire.TypeSPM && !p.FIN:
				news = t.reset(p)
				r.tombs[tsi] = t // keeps the first SPM of a reset
			case p.Type == wire.TypeODATA || p.Type == wire.TypeRDATA:
				q := ext(t.ref, p.Seq)
				news = q > t.lead || p.SYN && q != t.trail
			}
			if !news {
				r.stats.Dropped++
				return nil
			}
			restartOf = &t
		}
		delete(r.tombs, tsi)
	}
	if p.Type == wire.TypeNCF || p.Type == wire.TypeSPM && p.FIN {
		// NCFs do not define a window, and a closing source is not news.
		r.stats.Dropped++
		return nil
	}
	if !r.admit() {
		return nil
	}
	if restartOf != nil {
		// The same TSI, started over after its last session was reported
		// gone: a restart (EventSourceRestart with Prev = Source).
		s := r.addSource(now, tsi, from, p.Type == wire.TypeSPM)
		s.restartOf = tsi
		s.stale = staleFIN{ok: restartOf.haveSPM, seq: restartOf.spmSeq, lead: uint32(restartOf.lead)}
		return s
	}
	// A new session from the same GSI and address replaces an older one:
	// a restart. The old one drains first, its holes reported lost.
	for _, old := range r.sources {
		if old.tsi.GSI == tsi.GSI && old.addr == from && !old.closing && old.successor == nil {
			return r.restartSession(now, old, from, tsi, p.Type == wire.TypeSPM)
		}
	}
	return r.addSource(now, tsi, from, p.Type == wire.TypeSPM)
}

// addSource starts tracking a new session whose first packet (an SPM or
// not) arrived from the IP address from.
func (r *Receiver) addSource(now time.Time, tsi wire.TSI, from netip.Addr, spm bool) *source {
	s := &source{
		tsi:       tsi,
		addr:      from,
		group:     r.cfg.Group,
		nak:       nak.New(r.cfg.NAK, r.rng),
		ring:      make([]slot, 64),
		budget:    r.cfg.WindowBytes,
		lastHeard: now,
	}
	s.firstHeard = now
	if !r.cfg.Passive && !spm {
		s.spmrAt = now.Add(r.cfg.SPMRDelay)
	}
	r.sources = append(r.sources, s)
	r.byTSI[tsi] = s
	return s
}

// restartSession replaces old with a new session tsi (old's own TSI when
// its sequence numbers started over): old takes no new data, its holes
// are lost (LossSourceRestart), and the new one is delivered, as a
// restart, once old's last event is.
func (r *Receiver) restartSession(now time.Time, old *source, from netip.Addr, tsi wire.TSI, spm bool) *source {
	s := r.addSource(now, tsi, from, spm)
	old.successor, s.prev, s.restartOf = s, old, old.tsi
	if tsi == old.tsi && old.haveSPM {
		s.stale = staleFIN{ok: true, seq: old.spmSeq, lead: uint32(old.lead)}
	}
	if !old.closing { // one that finished, not yet swept, is closing already
		r.close(old, LossSourceRestart, 0)
	}
	return s
}

// admit makes room for a new source: with MaxSources tracked (not
// closing), it evicts the oldest unconfirmed one (GoneEvicted), or
// refuses the new one (false) if every source is confirmed or if as many
// again are closing, their last events not yet read.
func (r *Receiver) admit() bool {
	switch {
	case len(r.sources) >= 2*r.cfg.MaxSources:
	case len(r.sources)-r.closing < r.cfg.MaxSources:
		return true
	default:
		// r.sources is in order of arrival: oldest first.
		for _, s := range r.sources {
			if !s.closing && !s.confirmed() && s.prev == nil {
				r.close(s, LossSourceGone, GoneEvicted)
				r.stats.SourcesEvicted++
				return true
			}
		}
	}
	r.stats.SourcesDropped++
	return false
}

// close ends the session of s (source.close) and counts it as closing.
func (r *Receiver) close(s *source, reason LossReason, gone GoneReason) {
	r.closing++
	s.close(reason, gone)
}

// sequenceReset reports whether the SPM p says that s started over with
// new sequence numbers: a sender restarted with the same TSI (its SPM
// sequence numbers go back, and its lead is outside what s has seen), or
// one whose numbers jumped by 2^31 or more (its lead falls more than a
// window behind what was delivered, which serial arithmetic cannot tell
// from going back). One such SPM may be a straggler, reordered or
// duplicated by the network, so it takes two in a row, the second later
// in SPM order than the first; a normal SPM in between clears the first.
// A restarted OpenPGM or relmcast sender sends three SPMs before any data,
// so its data is not mistaken for the old session's.
func (r *Receiver) sequenceReset(s *source, p *wire.Packet) bool {
	if !s.started || s.successor != nil || !s.haveSPM {
		return false
	}
	next := s.ext(p.Lead) + 1 // the SPM's lead, plus one
	back := int32(p.Seq-s.spmSeq) < 0
	if !(back && (next < s.head || next > s.lead+1) || next+uint64(r.cfg.Window) < s.head) {
		s.resetSeen = false
		return false
	}
	if s.resetSeen && int32(p.Seq-s.resetSPM) > 0 {
		return true
	}
	s.resetSeen, s.resetSPM = true, p.Seq
	return false
}

// dportRestart reports whether the SPM p, to the other of the receiver's
// two data-destination ports than s's session uses, starts a new session
// of s's TSI: a sender restarted with the same GSI and port that switched
// batching on or off (see BatchDPort). The old session sends nothing to
// that port, but a forger could: as for sequenceReset it takes two SPMs in
// a row, the second later in SPM order, with no SPM of s between them.
func (r *Receiver) dportRestart(s *source, p *wire.Packet) bool {
	if p.Type != wire.TypeSPM || p.FIN || !s.started || s.successor != nil {
		return false
	}
	if s.dportSeen && int32(p.Seq-s.dportSPM) > 0 {
		return true
	}
	s.dportSeen, s.dportSPM = true, p.Seq
	return false
}

// synRestart reports whether p, data marked with OPT_SYN (the first data
// packet of a session, RFC 3208 §9.4), starts a new session of s's TSI:
// the sender restarted with the same GSI and port. The only OPT_SYN
// packet the session of s itself can still send is its first, and only
// while its window still holds it, i.e. at its trail: any other number is
// a new session. (OpenPGM never sends OPT_SYN; our Sender does, see
// SenderConfig.SYN.)
func (r *Receiver) synRestart(s *source, p *wire.Packet) bool {
	if !p.SYN || p.Type != wire.TypeODATA && p.Type != wire.TypeRDATA ||
		!s.started || s.successor != nil {
		return false
	}
	return s.ext(p.Seq) != s.trail
}

// onData takes an ODATA or RDATA. Data more than a window past the lead
// is dropped and an SPM asked for (SPMR): a source cannot get that far
// ahead of the highest number we have seen unless we missed a whole
// window, and then its SPM (trusted, as for OpenPGM) moves the window
// there. Data jumping further is more likely another session with the
// same TSI (a restarted sender whose first packets and SPMs were lost) or
// a spoofed packet; either way it never enters this session's window.
func (r *Receiver) onData(now time.Time, s *source, p *wire.Packet) {
	if !s.started {
		r.join(s, p.Seq, p.Trail)
	} else if !s.closing && s.ext(p.Seq) > s.lead+uint64(r.cfg.Window) {
		r.stats.Dropped++
		if !r.cfg.Passive && s.spmrAt.IsZero() {
			s.spmrAt = now
		}
		return
	}
	how := byODATA
	if p.Type == wire.TypeRDATA {
		how = byRDATA
	}
	var batch uint16
	if p.Batch {
		n, err := wire.CheckBatch(p.Payload)
		if err != nil || p.HasFragment {
			r.stats.BatchMalformed++
			return
		}
		batch = uint16(n)
	}
	if r.insert(now, s, p.Seq, p.Payload, p.HasFragment, p.Fragment, batch, how) {
		if t := s.ext(p.Trail); t <= s.ext(p.Seq) { // a trail past the packet itself is bogus
			s.trail = max(s.trail, t)
			r.onTrail(s, t)
		}
	}
	if s.fec != nil {
		r.fecOriginal(now, s, p)
	}
}

// How a data packet came.
const (
	byODATA = iota
	byRDATA
	byFEC
)

// insert puts data packet q into the receive window, and reports whether
// it was new.
func (r *Receiver) insert(now time.Time, s *source, q uint32, payload []byte, hasFrag bool, f wire.Fragment, batch uint16, how int) bool {
	seq := s.ext(q)
	if s.closing && seq > s.lead {
		r.stats.Dropped++ // the session is closing; nothing new is taken
		return false
	}
	if seq < s.head {
		r.stats.Duplicates++
		s.st.duplicates++
		return false
	}
	if seq > s.lead {
		r.extend(now, s, seq, true)
	}
	sl := s.slot(seq)
	if sl.state == slotHave {
		r.stats.Duplicates++
		s.st.duplicates++
		return false
	}
	switch {
	case how == byFEC:
		r.stats.FECRecovered++
		s.st.fecRecovered++
		r.repaired(now, s, sl)
	case how == byRDATA || sl.state == slotLost:
		r.stats.Repairs++
		s.st.repairs++
		r.repaired(now, s, sl)
	}
	sl.state = slotHave
	if sl.data == nil {
		sl.data = s.buffer() // counted in mem already
	}
	c := cap(sl.data)
	sl.data = append(sl.data[:0], payload...)
	s.mem += cap(sl.data) - c
	sl.frag = hasFrag
	sl.batchN = batch
	if hasFrag {
		sl.fragFirst = s.ext(f.First)
		sl.fragOff = f.Offset
		sl.fragLen = f.Length
	}
	s.nak.Repaired(seq)
	if s.mem > s.budget {
		s.trim()
	}
	return true
}

func (r *Receiver) onSPM(now time.Time, s *source, p *wire.Packet) {
	r.stats.SPMs++
	if s.haveSPM && int32(p.Seq-s.spmSeq) < 0 {
		r.stats.Dropped++ // an older SPM, reordered
		return
	}
	s.haveSPM, s.spmSeq = true, p.Seq
	s.spmrAt = time.Time{}
	r.fecSPM(s, p)
	if p.PathNLA.IsValid() && !p.PathNLA.IsUnspecified() {
		s.nla = p.PathNLA
	}
	if !s.started {
		r.join(s, p.Lead+1, p.Trail)
	}
	lead := s.ext(p.Lead)
	if lead > s.lead && !s.closing {
		r.extend(now, s, lead, false)
	}
	if t := s.ext(p.Trail); t <= lead+1 { // a trail past lead+1 is bogus
		s.trail = max(s.trail, t)
		r.onTrail(s, t)
	}
	if p.FIN {
		s.fin = true
	}
}

func (r *Receiver) onNCF(now time.Time, s *source, p *wire.Packet) {
	r.stats.NCFs++
	s.st.ncfs++
	if !s.started {
		return
	}
	for i := -1; i < p.NAKListLen; i++ {
		q := p.Seq
		if i >= 0 {
			q = p.NAKList[i]
		}
		seq := s.ext(q)
		if seq < s.head {
			continue
		}
		if seq > s.lead {
			if s.closing || seq > s.lead+uint64(r.cfg.Window) {
				continue // as for data (onData)
			}
			// An NCF beyond the lead reveals loss (someone else NAKed it).
			r.extend(now, s, seq, false)
		}
		s.nak.NCF(now, seq)
	}
}

// join defines the window of a new source whose first packet names first,
// reaching back to the source's trail by at most JoinBackfill.
func (r *Receiver) join(s *source, first, trail uint32) {
	back := first - trail
	if int32(back) < 0 || int(back) > r.cfg.JoinBackfill {
		back = 0
	}
	s.start(first - back)
}

// extend moves the lead of s to seq. With data, seq itself arrived; the
// numbers between the old lead and it are missing and get NAKed. If seq
// is further ahead than the window holds, the oldest numbers are dropped
// as LossOverrun.
func (r *Receiver) extend(now time.Time, s *source, seq uint64, data bool) {
	if max := uint64(r.cfg.Window); seq-s.head >= max {
		s.skipTo(seq-max+1, LossOverrun)
	}
	s.grow(seq - s.head + 1)
	from := max(s.lead+1, s.head)
	last := seq
	if data {
		last = seq - 1
	}
	for q := from; q <= seq; q++ {
		s.slot(q).reset()
	}
	if from <= last {
		gapAt := r.rel(now) // only for a gap: in-order data reads no clock
		for q := from; q <= last; q++ {
			s.slot(q).gapAt = gapAt
		}
	}
	s.lead = seq
	if from <= last {
		s.nak.Missing(now, from, last)
	}
}

// onTrail applies the source's advertised trail: numbers before it that
// are still missing can never be repaired.
func (r *Receiver) onTrail(s *source, t uint64) {
	// Constrained start (as OpenPGM's is_constrained): a late joiner
	// ignores the trail until it passes the first number it saw.
	if t <= s.joined || t <= s.head {
		return
	}
	if t > s.lead+1 {
		// The source no longer holds numbers we have not even seen.
		if t-s.head > uint64(r.cfg.Window) {
			s.skipTo(t, LossWindowPassed)
			return
		}
		s.grow(t - s.head)
		for q := s.lead + 1; q < t; q++ {
			s.slot(q).reset()
		}
		s.lead = t - 1
	}
	s.markLost(s.head, t-1, LossWindowPassed)
	s.nak.Forget(t)
}

// maybeFinish closes a source that sent FIN once nothing is missing.
func (r *Receiver) maybeFinish(s *source) {
	if s.fin && !s.closing && s.nak.Len() == 0 {
		r.close(s, 0, GoneFIN)
	}
}

// Advance runs the timers due at now: NAKs to send, NAKs given up, SPMRs,
// source expiry.
func (r *Receiver) Advance(now time.Time) {
	r.now = now
	for _, s := range r.sources {
		if s.closing {
			continue
		}
		if now.Sub(s.lastHeard) >= r.cfg.SourceExpiry {
			r.close(s, LossSourceGone, GoneExpired)
			continue
		}
		if !s.spmrAt.IsZero() && !now.Before(s.spmrAt) {
			r.sendSPMR(s)
			s.spmrAt = now.Add(time.Second) // keep asking, while it is alive
		}
		if s.nak.Len() == 0 || now.Before(s.nakDeadline()) {
			continue
		}
		r.naks, r.lost = s.nak.Advance(now, r.naks[:0], r.lost[:0])
		if len(r.naks) > 0 {
			s.nakPass = now.Add(nakCoalesce)
		}
		for _, l := range r.lost {
			s.markLost(l.First, l.Last, LossRetriesExhausted)
		}
		if len(r.naks) > 0 && !r.cfg.Passive {
			r.sendNAKs(s, r.fecNAKs(s, r.naks))
		}
		r.maybeFinish(s)
	}
}

// NextDeadline is the earliest time Advance has work; zero if none.
func (r *Receiver) NextDeadline() time.Time {
	var d time.Time
	min := func(t time.Time) {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	for _, s := range r.sources {
		if s.closing {
			continue
		}
		min(s.nakDeadline())
		min(s.spmrAt)
		min(s.lastHeard.Add(r.cfg.SourceExpiry))
	}
	return d
}

// nakCoalesce is the least time between two NAK passes of a source
// (Advance) that send NAKs. Under heavy random loss a receiver's loop
// runs every few packets, and each pass would find only the one or two
// numbers whose back-off just ran out: a NAK packet each, more than
// NAKRate allows (the surplus then waits a whole NAKRepeat). Holding the
// next pass for a millisecond gathers them into lists of up to 63 numbers,
// at most 1000 passes per second and source, for at most a millisecond's
// delay of a NAK.
const nakCoalesce = time.Millisecond

// nakDeadline is when the source's NAK state next has work for Advance.
func (s *source) nakDeadline() time.Time {
	d := s.nak.NextDeadline()
	if !d.IsZero() && d.Before(s.nakPass) {
		return s.nakPass
	}
	return d
}

// sendNAKs queues NAK packets for seqs (increasing), up to 63 numbers each,
// unicast to the source's NLA at port P.
func (r *Receiver) sendNAKs(s *source, seqs []uint64) {
	nla := s.unicast()
	dst := netip.AddrPortFrom(nla, r.cfg.DPort)
	for len(seqs) > 0 {
		n := min(len(seqs), wire.MaxNAKSeqs)
		p := wire.Packet{
			Type:      wire.TypeNAK,
			SPort:     s.dport, // upstream: ports swap (RFC 3208 §8.3)
			DPort:     s.tsi.Port,
			GSI:       s.tsi.GSI,
			Seq:       uint32(seqs[0]),
			SourceNLA: nla,
			GroupNLA:  s.group,
		}
		for i, q := range seqs[1:n] {
			p.NAKList[i] = uint32(q)
		}
		p.NAKListLen = n - 1
		seqs = seqs[n:]
		if !r.nakAllowed() {
			continue
		}
		r.out.push(&p, dst)
		r.stats.NAKPackets++
		r.stats.NAKs += uint64(n)
		s.st.nakPackets++
		s.st.naks += uint64(n)
	}
}

// sendSPMR asks the source for an SPM: by multicast, so other receivers
// can hold theirs back, and unicast to the address its packets came from.
func (r *Receiver) sendSPMR(s *source) {
	p := wire.Packet{Type: wire.TypeSPMR, SPort: s.dport, DPort: s.tsi.Port, GSI: s.tsi.GSI}
	r.out.push(&p, netip.AddrPortFrom(r.cfg.Group, r.cfg.DPort))
	r.out.push(&p, netip.AddrPortFrom(s.addr, r.cfg.DPort))
	r.stats.SPMRs++
}

// Poll appends the next datagram to send (a NAK or SPMR) to buf and
// returns it with its destination; ok is false when there is none.
func (r *Receiver) Poll(buf []byte) (pkt []byte, dst netip.AddrPort, ok bool) {
	return r.out.pop(buf)
}

// Deliver hands ready events to fn in order, source by source, until fn
// returns false (the application's queue is full: the event is kept and
// offered again next time) or nothing is ready. Event.Data is valid only
// during the call.
func (r *Receiver) Deliver(fn func(*Event) bool) {
	// A second pass delivers the sessions that a restart held back until
	// the first pass removed their predecessors.
	for pass := 0; pass < 2; pass++ {
		removed, full := false, false
		for _, s := range r.sources {
			if s.prev != nil {
				continue // a restarted session waits until the old one drained
			}
			if !r.deliverSource(s, fn) {
				full = true
				break
			}
			removed = removed || s.removed
		}
		if removed {
			r.sweep()
		}
		if full || !removed {
			return
		}
	}
}

// sweep forgets the sources whose last event was delivered.
func (r *Receiver) sweep() {
	keep := r.sources[:0]
	for _, s := range r.sources {
		if !s.removed {
			keep = append(keep, s)
			continue
		}
		r.closing--
		if r.byTSI[s.tsi] != s {
			// A session whose sequence numbers started over: its
			// successor has the TSI now.
			if s.successor != nil {
				s.successor.prev = nil
			}
			continue
		}
		delete(r.byTSI, s.tsi)
		if s.gone != GoneEvicted { // an evicted source may come back at once
			r.bury(s)
		}
		if s.successor != nil {
			s.successor.prev = nil
		}
	}
	clear(r.sources[len(keep):])
	r.sources = keep
}

// bury keeps a tombstone of a removed source until SourceExpiry after
// its last packet. At most MaxSources are kept: when they are, the
// expired ones are purged, but not before the first of them expires.
func (r *Receiver) bury(s *source) {
	if len(r.tombs) >= r.cfg.MaxSources && !r.now.Before(r.tombsNext) {
		r.tombsNext = time.Time{}
		for tsi, t := range r.tombs {
			if !r.now.Before(t.until) {
				delete(r.tombs, tsi)
			} else if r.tombsNext.IsZero() || t.until.Before(r.tombsNext) {
				r.tombsNext = t.until
			}
		}
	}
	if len(r.tombs) < r.cfg.MaxSources {
		t := tomb{until: s.lastHeard.Add(r.cfg.SourceExpiry), lead: s.lead, ref: s.lead, trail: s.trail,
			haveSPM: s.haveSPM, spmSeq: s.spmSeq, fin: s.fin, dport: s.dport}
		r.tombs[s.tsi] = t
		if !r.tombsNext.IsZero() && t.until.Before(r.tombsNext) {
			r.tombsNext = t.until
		}
	}
}

// deliverSource delivers the ready events of s; false means fn refused one.
func (r *Receiver) deliverSource(s *source, fn func(*Event) bool) bool {
	ev := &r.ev
	if !s.announced {
		*ev = Event{Source: s.tsi, Addr: s.unicast(), Kind: EventSourceNew}
		if s.restartOf != (wire.TSI{}) {
			ev.Kind, ev.Prev = EventSourceRestart, s.restartOf
		}
		if !fn(ev) {
			return false
		}
		s.announced = true
	}
	for {
		*ev = Event{Source: s.tsi, Addr: s.unicast()}
		adv, ok := r.nextEvent(s, ev)
		if !ok {
			break
		}
		if !fn(ev) {
			return false
		}
		s.consume(adv)
		s.delivered = true
		switch ev.Kind {
		case EventData:
			msgs, bytes := uint64(max(1, ev.Batch)), uint64(len(ev.Data)-wire.BatchFrameLen*ev.Batch)
			r.stats.Messages += msgs
			r.stats.Bytes += bytes
			s.st.messages += msgs
			s.st.bytes += bytes
		case EventLoss:
			r.stats.LossEvents++
			r.stats.Lost += ev.Lost
			s.st.lossEvents++
			s.st.lost += ev.Lost
		}
	}
	if s.closing && s.drained() {
		if s.gone != 0 {
			*ev = Event{Source: s.tsi, Addr: s.unicast(), Kind: EventSourceGone, GoneReason: s.gone}
			if !fn(ev) {
				return false
			}
		}
		s.removed = true
	}
	return true
}

// nextEvent builds the next event of s without consuming it, and returns
// how far delivering it moves s.head (after the pending skip).
func (r *Receiver) nextEvent(s *source, ev *Event) (adv uint64, ok bool) {
	// Fragments at the head of a message that began before we joined are
	// not ours to deliver, nor a loss: drop them silently.
	// FEC padding TPDUs (see FECConfig) are not messages either.
	for s.skipN == 0 && s.head <= s.lead {
		sl := s.slot(s.head)
		if sl.state != slotHave || !sl.frag {
			break
		}
		if sl.padding(s.head) {
			r.stats.Padding++
		} else if sl.fragFirst >= s.joined || s.delivered {
			break
		}
		s.consume(1)
	}
	// A loss run: the pending skip, then lost numbers and orphaned
	// fragments (whose message's start was lost or is malformed).
	first, n, reason := s.head, uint64(0), LossReason(0)
	if s.skipN > 0 {
		first, n, reason = s.skipFirst, s.skipN, s.skipReason
	}
	for q := s.head; q <= s.lead; q++ {
		sl := s.slot(q)
		orphan := sl.state == slotHave && sl.frag && sl.fragFirst < q
		if sl.state != slotLost && !orphan {
			break
		}
		if reason == 0 {
			reason = sl.reason
			if orphan {
				reason = cmp.Or(s.lastReason, LossMalformed)
			}
		}
		adv++
	}
	if n+adv > 0 {
		// While the number right after the run is still being repaired,
		// hold the report: delivery waits there anyway, and if it is lost
		// too (a trail that passes a hole one number at a time) the run
		// grows into one event instead of many.
		if q := s.head + adv; q <= s.lead && s.slot(q).state == slotMissing {
			return 0, false
		}
		ev.Kind = EventLoss
		ev.First, ev.Last = uint32(first), uint32(first+n+adv-1)
		ev.Lost = n + adv
		ev.LossReason = reason
		s.lastReason = reason
		return adv, true
	}
	if s.head > s.lead {
		return 0, false
	}
	sl := s.slot(s.head)
	if sl.state != slotHave {
		return 0, false // missing: wait for the repair
	}
	if !sl.frag {
		ev.Kind = EventData
		ev.Data = sl.data
		ev.Batch = int(sl.batchN)
		ev.First, ev.Last = uint32(s.head), uint32(s.head)
		return 1, true
	}
	// A fragmented message starting here is complete when its fragments,
	// in sequence order, add up to its length. OpenPGM does not check the
	// offsets; we do, and a mismatch makes the message lost (malformed).
	total, apdu := sl.fragLen, r.apdu[:0]
	for q := s.head; q <= s.lead; q++ {
		f := s.slot(q)
		switch {
		case f.state == slotMissing:
			return 0, false
		case f.state == slotLost:
			// The message is lost whole: its fragments already here go
			// with the lost one into the same report.
			end := q + 1
			for ; end <= s.lead; end++ {
				g := s.slot(end)
				if g.state != slotLost && !(g.state == slotHave && g.frag && g.fragFirst == s.head) {
					break
				}
			}
			return s.lossAt(ev, end-s.head, f.reason), true
		case q > s.head && (!f.frag || f.fragFirst == q):
			// The next message begins before this one is complete: this
			// one is lost, the next one stands on its own.
			return s.lossAt(ev, q-s.head, LossMalformed), true
		case !f.frag || f.fragFirst != s.head || f.fragLen != total || f.fragOff != uint32(len(apdu)) ||
			uint64(len(apdu))+uint64(len(f.data)) > uint64(total):
			return s.lossAt(ev, q-s.head+1, LossMalformed), true
		}
		apdu = append(apdu, f.data...)
		if uint32(len(apdu)) == total {
			r.apdu = apdu
			ev.Kind = EventData
			ev.Data = apdu
			ev.First, ev.Last = uint32(s.head), uint32(q)
			return q - s.head + 1, true
		}
	}
	if s.closing {
		// Nothing past the lead is taken any more: the message cannot
		// complete.
		return s.lossAt(ev, s.lead-s.head+1, cmp.Or(s.closeReason, LossMalformed)), true
	}
	return 0, false // more fragments to come
}

// outQueue holds encoded NAKs and SPMRs until Poll takes them, reusing
// their buffers.
type outQueue struct {
	q    []outPkt
	head int
}

type outPkt struct {
	b   []byte
	dst netip.AddrPort
}

func (o *outQueue) push(p *wire.Packet, dst netip.AddrPort) {
	if o.head == len(o.q) {
		o.q, o.head = o.q[:0], 0
	}
	if len(o.q) < cap(o.q) {
		o.q = o.q[:len(o.q)+1]
	} else {
		o.q = append(o.q, outPkt{})
	}
	e := &o.q[len(o.q)-1]
	b, err := p.Append(e.b[:0])
	if err != nil || !dst.IsValid() {
		o.q = o.q[:len(o.q)-1] // no address to send to: nothing to do
		return
	}
	e.b, e.dst = b, dst
}

func (o *outQueue) pop(buf []byte) ([]byte, netip.AddrPort, bool) {
	if o.head == len(o.q) {
		return buf, netip.AddrPort{}, false
	}
	e := &o.q[o.head]
	o.head++
	return append(buf, e.b...), e.dst, true
}
