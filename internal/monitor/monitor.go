// Package monitor is the sans-IO core of mcstat, a passive monitor of a
// PGM group: fed every datagram seen on the group's port (parsed with
// internal/wire), it keeps, per source (TSI), the packets of each type,
// the message and byte rates, the window (trail..lead) the source
// advertises in its SPMs and data, and an estimate of the loss on the
// path to the monitor: the gaps in the ODATA sequence it sees.
//
// A monitor sees only what reaches it: everything a source multicasts
// (ODATA, RDATA, SPM, NCF) and what receivers multicast (SPMRs), but not
// the NAKs, which receivers unicast to the source. Its NAK count is of
// NAKs that happen to reach it (on the source's host they go to the
// source's own socket, not to the monitor's). NCFs show NAK activity
// instead: a source answers each NAK with a multicast NCF.
//
// A Monitor does no I/O and reads no clock; it is not safe for
// concurrent use. Memory is bounded by Config.MaxSources.
package monitor

import (
	"net/netip"
	"sort"
	"time"

	"github.com/relmcast/relmcast/internal/wire"
)

// Config configures a Monitor. Zero values mean the defaults.
type Config struct {
	// DPort, if not 0, is the group's port: packets for other ports
	// (but BatchDPort) are counted in Stats.Other and otherwise ignored.
	DPort uint16
	// BatchDPort, if not 0, is a second port taken as the group's: that
	// of batching sources on it (session.BatchDPort(DPort)), which send
	// their whole session with it.
	BatchDPort uint16
	// MaxSources bounds the sources tracked; a new one evicts the one
	// heard from least recently. Default 1024.
	MaxSources int
	// Expiry forgets a source silent for this long. Default 60s (OpenPGM
	// and ZeroMQ sources send an SPM every 30 s when idle).
	Expiry time.Duration
}

// Counts are the packets and bytes of one source, as seen by the
// monitor.
type Counts struct {
	ODATA, RDATA, SPM, NCF uint64 // downstream packets
	NAK, NNAK, SPMR        uint64 // upstream packets (see the package doc: NAKs are unicast)
	Parity                 uint64 // of ODATA and RDATA, FEC parity packets
	Messages               uint64 // messages ODATA ends (unfragmented, a message's last fragment, each of a batch)
	Bytes                  uint64 // ODATA payload bytes (TSDUs, less a batch's framing), parity excluded
	Sequenced              uint64 // ODATA in the data sequence (not parity)
	// Gaps counts the ODATA sequence numbers the monitor did not see
	// when a later one came: the loss on the path to the monitor, less
	// Late, those that then came out of order.
	Gaps, Late uint64
}

// Source is what the monitor knows of one source.
type Source struct {
	TSI wire.TSI
	// Addr is the source's address: the IP source of its downstream
	// packets, or the path NLA of its SPMs once one came.
	Addr      netip.Addr
	FirstSeen time.Time
	LastSeen  time.Time
	Counts

	// Window is what the source advertises: Trail is its oldest sequence
	// number still held for repair (from its SPMs and data), Lead the
	// highest it sent. HaveWindow is false until a packet said.
	Trail, Lead uint32
	HaveWindow  bool
	// FIN: the source's SPMs carry OPT_FIN (it is closing).
	FIN bool

	nextODATA uint32 // the ODATA sequence number expected next
	haveODATA bool
	prev      Counts    // at the last Snapshot
	prevAt    time.Time // the last Snapshot; zero: none
}

// Stats are the monitor's totals.
type Stats struct {
	Packets   uint64 // datagrams handled
	Malformed uint64 // not valid PGM
	Other     uint64 // PGM for another port, or of a type not counted (POLL, POLR, ACK)
	Evicted   uint64 // sources evicted for new ones (MaxSources)
	Expired   uint64 // sources forgotten after Expiry
}

// Report is one source in a Snapshot: its state and its rates over the
// interval since the previous snapshot (or since it was first seen).
type Report struct {
	Source
	Interval                time.Duration // what the rates are over
	MsgsPerSec, BytesPerSec float64       // ODATA messages and payload bytes
	// Delta is what was counted during the interval.
	Delta Counts
}

// LossRatio estimates the ODATA loss on the path to the monitor over the
// interval: gaps (less late arrivals) over the ODATA expected.
func (r *Report) LossRatio() float64 {
	lost := float64(r.Delta.Gaps) - float64(r.Delta.Late)
	if lost <= 0 {
		return 0
	}
	return lost / (lost + float64(r.Delta.Sequenced))
}

// Monitor aggregates the packets of a group.
type Monitor struct {
	cfg     Config
	sources map[wire.TSI]*Source
	stats   Stats
}

// New returns a Monitor.
func New(cfg Config) *Monitor {
	if cfg.MaxSources <= 0 {
		cfg.MaxSources = 1024
	}
	if cfg.Expiry <= 0 {
		cfg.Expiry = 60 * time.Second
	}
	return &Monitor{cfg: cfg, sources: make(map[wire.TSI]*Source)}
}

// Stats returns the totals.
func (m *Monitor) Stats() Stats { return m.stats }

// HandleDatagram parses one datagram that came from the address from and
// handles it; a datagram that is not valid PGM is counted as Malformed.
func (m *Monitor) HandleDatagram(now time.Time, b []byte, from netip.Addr) {
	var p wire.Packet
	if err := wire.Parse(b, &p); err != nil {
		m.stats.Packets++
		m.stats.Malformed++
		return
	}
	m.Handle(now, &p, from)
}

// Handle counts one parsed packet that came from the address from.
func (m *Monitor) Handle(now time.Time, p *wire.Packet, from netip.Addr) {
	m.stats.Packets++
	switch p.Type {
	case wire.TypeODATA, wire.TypeRDATA, wire.TypeSPM, wire.TypeNCF, wire.TypeNAK, wire.TypeNNAK, wire.TypeSPMR:
	default:
		m.stats.Other++
		return
	}
	down := p.Type.Downstream()
	port := p.DPort // the group's port: dport downstream, sport upstream
	if !down {
		port = p.SPort
	}
	if m.cfg.DPort != 0 && port != m.cfg.DPort && (m.cfg.BatchDPort == 0 || port != m.cfg.BatchDPort) {
		m.stats.Other++
		return
	}
	s := m.source(now, p.TSI())
	s.LastSeen = now
	if down && !s.Addr.IsValid() {
		s.Addr = from.Unmap()
	}
	c := &s.Counts
	switch p.Type {
	case wire.TypeODATA, wire.TypeRDATA:
		parity := p.Options&wire.OptParity != 0
		if parity {
			c.Parity++
		}
		if p.Type == wire.TypeRDATA {
			c.RDATA++
		} else {
			c.ODATA++
			if !parity {
				s.odata(p)
			}
		}
		if !parity {
			s.window(p.Trail, p.Seq)
		}
	case wire.TypeSPM:
		c.SPM++
		s.window(p.Trail, p.Lead)
		if p.PathNLA.IsValid() && !p.PathNLA.IsUnspecified() {
			s.Addr = p.PathNLA.Unmap()
		}
		s.FIN = s.FIN || p.FIN
	case wire.TypeNCF:
		c.NCF++
	case wire.TypeNAK:
		c.NAK++
	case wire.TypeNNAK:
		c.NNAK++
	case wire.TypeSPMR:
		c.SPMR++
	}
}

// source returns the source tsi, creating it (and evicting the least
// recently heard one when the table is full).
func (m *Monitor) source(now time.Time, tsi wire.TSI) *Source {
	if s := m.sources[tsi]; s != nil {
		return s
	}
	if len(m.sources) >= m.cfg.MaxSources {
		var old *Source
		for _, s := range m.sources {
			if old == nil || s.LastSeen.Before(old.LastSeen) {
				old = s
			}
		}
		delete(m.sources, old.TSI)
		m.stats.Evicted++
	}
	s := &Source{TSI: tsi, FirstSeen: now, LastSeen: now}
	m.sources[tsi] = s
	return s
}

// odata counts an ODATA packet (not parity): a message if it ends one,
// its bytes, and the gap before it.
func (s *Source) odata(p *wire.Packet) {
	s.Sequenced++
	msgs, bytes := messages(p)
	s.Messages += msgs
	s.Bytes += bytes
	switch d := int32(p.Seq - s.nextODATA); {
	case !s.haveODATA:
		s.haveODATA, s.nextODATA = true, p.Seq+1
	case d > maxGap:
		s.nextODATA = p.Seq + 1 // a restart or a jump: not a gap we can judge
	case d >= 0:
		s.Gaps += uint64(d)
		s.nextODATA = p.Seq + 1
	case d < 0 && s.Late < s.Gaps:
		s.Late++ // one of a gap came out of order (or a duplicate)
	}
}

// messages returns the messages an ODATA packet ends and their bytes:
// each of a batch (OPT_BATCH, without its framing), or one if it is
// unfragmented or a message's last fragment.
func messages(p *wire.Packet) (msgs, bytes uint64) {
	if p.Batch {
		// Parse checked the framing; a packet built by hand may be
		// wrong, and counts as a plain one then.
		if n, err := wire.CheckBatch(p.Payload); err == nil {
			return uint64(n), uint64(len(p.Payload) - wire.BatchFrameLen*n)
		}
	}
	if !p.HasFragment || uint64(p.Fragment.Offset)+uint64(len(p.Payload)) >= uint64(p.Fragment.Length) {
		msgs = 1
	}
	return msgs, uint64(len(p.Payload))
}

// maxGap is the largest jump in ODATA sequence numbers counted as a gap:
// a larger one is taken as the source starting over elsewhere.
const maxGap = 1 << 20

// window moves the advertised window: the trail and lead go forward only
// (serial arithmetic).
func (s *Source) window(trail, lead uint32) {
	if !s.HaveWindow {
		s.Trail, s.Lead, s.HaveWindow = trail, lead, true
		return
	}
	if int32(lead-s.Lead) > 0 {
		s.Lead = lead
	}
	if int32(trail-s.Trail) > 0 {
		s.Trail = trail
	}
}

// Snapshot forgets the sources silent for longer than Expiry, then
// appends a report of every other source to dst, ordered by first seen
// (then TSI), and starts a new interval.
func (m *Monitor) Snapshot(now time.Time, dst []Report) []Report {
	start := len(dst)
	for tsi, s := range m.sources {
		if now.Sub(s.LastSeen) >= m.cfg.Expiry {
			delete(m.sources, tsi)
			m.stats.Expired++
			continue
		}
		since := s.prevAt
		if since.IsZero() {
			since = s.FirstSeen
		}
		r := Report{Source: *s, Interval: now.Sub(since), Delta: s.Counts.sub(s.prev)}
		if secs := r.Interval.Seconds(); secs > 0 {
			r.MsgsPerSec = float64(r.Delta.Messages) / secs
			r.BytesPerSec = float64(r.Delta.Bytes) / secs
		}
		s.prev, s.prevAt = s.Counts, now
		dst = append(dst, r)
	}
	out := dst[start:]
	sort.Slice(out, func(i, j int) bool {
		a, b := &out[i], &out[j]
		if !a.FirstSeen.Equal(b.FirstSeen) {
			return a.FirstSeen.Before(b.FirstSeen)
		}
		return a.TSI.String() < b.TSI.String()
	})
	return dst
}

func (c Counts) sub(o Counts) Counts {
	return Counts{
		ODATA: c.ODATA - o.ODATA, RDATA: c.RDATA - o.RDATA, SPM: c.SPM - o.SPM, NCF: c.NCF - o.NCF,
		NAK: c.NAK - o.NAK, NNAK: c.NNAK - o.NNAK, SPMR: c.SPMR - o.SPMR, Parity: c.Parity - o.Parity,
		Messages: c.Messages - o.Messages, Bytes: c.Bytes - o.Bytes, Sequenced: c.Sequenced - o.Sequenced,
		Gaps: c.Gaps - o.Gaps, Late: c.Late - o.Late,
	}
}
