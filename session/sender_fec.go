package session

import (
	"encoding/binary"
	"fmt"

	"github.com/relmcast/relmcast/fec"
	"github.com/relmcast/relmcast/internal/wire"
)

// FECConfig turns on forward error correction (RFC 3208 §12, with
// OpenPGM's Reed–Solomon code: package fec). The zero value is off, which
// is what OpenPGM and ZeroMQ peers expect: their FEC does not work on the
// wire (research/openpgm.md §8.5), so FEC is for our own receivers.
//
// With FEC on:
//   - every SPM carries OPT_PARITY_PRM {Proactive, OnDemand, GroupSize};
//   - sequence numbers form transmission groups of GroupSize, aligned on
//     multiples of it (FirstSeq must be one);
//   - data TPDUs are 22 bytes shorter (MaxTSDU and MaxFragment shrink), so
//     that a parity packet (2-byte length trailer, OPT_FRAGMENT) still fits
//     MaxTPDU;
//   - parity packets are RDATA with OPT_PARITY and sequence number
//     tg_sqn|h, rate limited and sent before new data, like repairs, and
//     counted in SenderStats.RDATA as well as in ParityProactive or
//     ParityOnDemand;
//   - Close completes the last, partial group with padding TPDUs (see
//     below), so that the tail of the stream is protected too, and the FIN
//     SPMs wait for the last group's parity.
//
// Padding TPDUs are ODATA with an empty payload and an OPT_FRAGMENT of
// {First: own sqn, Offset: 0, Length: 1}: a fragment that no real message
// has (our fragments are never empty), and that the FEC code carries, so a
// padding TPDU rebuilt by a receiver's decoder is still recognisable. Our
// Receiver drops such TPDUs silently. The APDU length is 1 rather than 0
// because OpenPGM receivers crash on an OPT_FRAGMENT whose APDU length
// equals its TSDU length (research §11.1); an OpenPGM receiver of a FEC
// sender sees an incomplete message instead.
type FECConfig struct {
	// GroupSize is the transmission group size k: a power of two in
	// 2..128. 0 turns FEC off (then Proactive and OnDemand must be zero).
	GroupSize int
	// Proactive is the number of parity packets sent after the last ODATA
	// of each group, 0..min(k, 255-k). A receiver that lost at most
	// Proactive packets of a group (parity included) rebuilds them
	// without a NAK.
	Proactive int
	// OnDemand answers parity NAKs (Seq tg_sqn|(n-1), OPT_PARITY) for a
	// group still whole in the window with an NCF (OPT_PARITY) and n fresh
	// parity packets of that group, continuing the parity index after
	// those already sent: one fresh parity packet repairs a different loss
	// at each receiver. Requests arriving while parity of the group is
	// queued, or within NAKElim of its last parity packet, only add what
	// that parity does not cover. Parity NAKs for a group no longer whole
	// are NCF'd and counted (ParityNAKsIgnored); the receiver NAKs
	// selectively next. Without OnDemand, parity NAKs are counted and
	// ignored, as OpenPGM does.
	OnDemand bool
}

// fecReserve is what data TPDUs leave free with FEC on, so that the parity
// packet of a group fits MaxTPDU: the VAR_PKTLEN length trailer and
// OPT_LENGTH + OPT_FRAGMENT, which a parity packet carries when any
// original of its group is a fragment.
const fecReserve = 2 + wire.FragmentOverhead

func (f *FECConfig) validate(c *SenderConfig) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("session: SenderConfig.FEC."+format, a...)
	}
	if f.GroupSize == 0 {
		if f.Proactive != 0 || f.OnDemand {
			return bad("GroupSize is 0 (FEC off) but Proactive or OnDemand is set")
		}
		return nil
	}
	code, err := fec.NewCode(f.GroupSize)
	if err != nil {
		return bad("GroupSize %d: %v", f.GroupSize, err)
	}
	switch {
	case f.Proactive < 0 || f.Proactive > code.MaxParity():
		return bad("Proactive %d is outside 0..%d", f.Proactive, code.MaxParity())
	case f.Proactive == 0 && !f.OnDemand:
		return bad("GroupSize %d without Proactive or OnDemand parity", f.GroupSize)
	case c.FirstSeq%uint32(f.GroupSize) != 0:
		return bad("GroupSize %d: FirstSeq %d is not a multiple of it", f.GroupSize, c.FirstSeq)
	case c.WindowPackets < f.GroupSize:
		return bad("GroupSize %d is larger than WindowPackets %d", f.GroupSize, c.WindowPackets)
	case c.MaxTPDU < minTPDU+fecReserve:
		return bad("MaxTPDU %d is below %d, the minimum with FEC", c.MaxTPDU, minTPDU+fecReserve)
	}
	return nil
}

// maxTSDU is the payload of a single-TPDU message.
func (c *SenderConfig) maxTSDU() int {
	n := c.MaxTPDU - wire.HeaderLen - wire.DataHeaderLen
	if c.FEC.GroupSize > 0 {
		n -= fecReserve
	}
	return n
}

// txParity is a parity packet to send: index h of the group at tg.
type txParity struct {
	tg  uint32
	h   uint16
	pro bool // pro-active (else on-demand)
}

// txFEC is the sender's FEC state.
type txFEC struct {
	code *fec.Code
	enc  *fec.Encoder // nil without pro-active parity
	k    uint32

	// Parity FIFO: a power-of-two ring. Entries of groups that left the
	// window are dropped when they reach the head.
	q     []txParity
	qHead int
	qLen  int

	// The head entry, encoded (without its final trail and checksum),
	// while it waits for the rate limiter.
	staged    []byte
	hasStaged bool

	scratch []byte         // parity payload
	origs   []fec.Original // the k originals of a group, for Code.Parity
}

func newTxFEC(c *SenderConfig) *txFEC {
	code, _ := fec.NewCode(c.FEC.GroupSize) // validated
	f := &txFEC{
		code:    code,
		k:       uint32(c.FEC.GroupSize),
		q:       make([]txParity, 16),
		staged:  make([]byte, 0, c.MaxTPDU),
		scratch: make([]byte, 0, c.MaxTPDU),
		origs:   make([]fec.Original, c.FEC.GroupSize),
	}
	if c.FEC.Proactive > 0 {
		f.enc, _ = fec.NewEncoder(code, c.maxTSDU(), c.FEC.Proactive)
	}
	return f
}

func (f *txFEC) push(e txParity) {
	if f.qLen == len(f.q) {
		q := make([]txParity, 2*len(f.q))
		for i := range f.qLen {
			q[i] = f.q[(f.qHead+i)&(len(f.q)-1)]
		}
		f.q, f.qHead = q, 0
	}
	f.q[(f.qHead+f.qLen)&(len(f.q)-1)] = e
	f.qLen++
}

func (f *txFEC) pop() {
	f.qHead = (f.qHead + 1) & (len(f.q) - 1)
	f.qLen--
	f.hasStaged = false
}

// padGroup completes a partial last group with padding TPDUs (see
// FECConfig), at Close.
func (s *Sender) padGroup() {
	n := int(s.fec.k - s.nextSeq&(s.fec.k-1))
	if n == int(s.fec.k) {
		return // the last group is complete (or nothing was sent)
	}
	s.reserve(n)
	for range n {
		s.enqueue(nil, true, wire.Fragment{First: s.nextSeq, Length: 1}, false, false)
		s.stats.Padding++
	}
}

// slotOriginal returns the FEC original held in a window slot.
func slotOriginal(sl *txSlot) fec.Original {
	o := fec.Original{TSDU: sl.buf[len(sl.buf)-int(sl.tsdu):]}
	if sl.flags&txFrag != 0 {
		off := wire.HeaderLen + wire.DataHeaderLen + 8 // OPT_LENGTH, OPT_FRAGMENT header
		o.HasFragment = true
		o.Fragment = fec.Fragment{
			First:  binary.BigEndian.Uint32(sl.buf[off:]),
			Offset: binary.BigEndian.Uint32(sl.buf[off+4:]),
			Length: binary.BigEndian.Uint32(sl.buf[off+8:]),
		}
	}
	return o
}

// fecSent feeds the ODATA seq just sent to the pro-active encoder and
// queues the group's parity when it is complete.
func (s *Sender) fecSent(seq uint32, sl *txSlot) {
	f := s.fec
	if f.enc == nil {
		return
	}
	if f.enc.Add(seq, slotOriginal(sl)) != nil || !f.enc.Complete() {
		return // ErrSequence cannot happen: groups are aligned and sent in order
	}
	tg := f.enc.Group()
	rows := f.enc.Rows()
	for h := range rows {
		f.push(txParity{tg: tg, h: uint16(h), pro: true})
	}
	if s.inWindow(tg) {
		g := s.slot(tg)
		g.parNext, g.parPend, g.parRound = uint16(rows), g.parPend+uint16(rows), uint16(rows)
	}
}

// groupWhole reports whether all k TPDUs of the group at tg are in the
// window.
func (s *Sender) groupWhole(tg uint32) bool {
	return s.inWindow(tg) && s.inWindow(tg+s.fec.k-1)
}

// onParityNAK handles a parity NAK: each sqn it names (Seq and the list)
// is tg_sqn|(n-1), a request for n more parity packets of group tg.
func (s *Sender) onParityNAK(t int64, p *wire.Packet) {
	s.stats.ParityNAKs++
	if s.fec == nil || !s.cfg.FEC.OnDemand {
		s.stats.ParityNAKsIgnored++
		return
	}
	s.queueNCF(p, wire.OptParity)
	s.parityRequest(t, p.Seq)
	for _, q := range p.NAKList[:p.NAKListLen] {
		s.parityRequest(t, q)
	}
}

func (s *Sender) parityRequest(t int64, q uint32) {
	f := s.fec
	tg, n := f.code.Group(q), f.code.Index(q)+1
	if !s.groupWhole(tg) {
		s.stats.ParityNAKsIgnored++
		return
	}
	g := s.slot(tg)
	extra := n
	if g.parPend > 0 || g.parRound > 0 && t-g.parAt < s.nakElim {
		// The parity queued or just sent reaches the NAKer too.
		extra -= int(g.parRound)
	} else {
		g.parRound = 0
	}
	if extra <= 0 {
		s.stats.ParityEliminated++
		return
	}
	maxPar := uint16(f.code.MaxParity())
	for range extra {
		// Fresh indexes first; once all are used, start over (a repeat
		// still helps the receivers that lost the first copy).
		f.push(txParity{tg: tg, h: g.parNext % maxPar})
		g.parNext++
	}
	g.parPend += uint16(extra)
	g.parRound += uint16(extra)
}

// stage encodes the head entry of the parity FIFO, dropping entries of
// groups that can no longer be coded, and reports whether one is staged.
func (s *Sender) stage() bool {
	f := s.fec
	for f.qLen > 0 && !f.hasStaged {
		e := f.q[f.qHead]
		var p fec.Parity
		var err error
		switch {
		case e.pro && f.enc != nil && f.enc.Complete() && f.enc.Group() == e.tg:
			p, err = f.enc.Parity(f.scratch, int(e.h))
		case s.groupWhole(e.tg):
			for i := range f.origs {
				f.origs[i] = slotOriginal(s.slot(e.tg + uint32(i)))
			}
			p, err = f.code.Parity(f.scratch, e.tg, int(e.h), f.origs)
			clear(f.origs)
		default:
			err = fec.ErrIncomplete
		}
		if err != nil {
			if s.inWindow(e.tg) {
				if g := s.slot(e.tg); g.parPend > 0 {
					g.parPend--
				}
			}
			f.pop()
			continue
		}
		f.scratch = p.Payload[:0]
		opts := wire.OptParity
		if p.VarPktLen {
			opts |= wire.OptVarPktLen
		}
		pkt := wire.Packet{
			SPort:       s.cfg.TSI.Port,
			DPort:       s.cfg.DPort,
			Type:        wire.TypeRDATA,
			Options:     opts,
			GSI:         s.cfg.TSI.GSI,
			Seq:         p.Seq,
			Trail:       s.trail,
			HasFragment: p.HasFragment,
			Fragment:    wire.Fragment(p.Fragment),
			Payload:     p.Payload,
		}
		f.staged = s.appendPacket(f.staged[:0], &pkt)
		f.hasStaged = true
	}
	return f.hasStaged
}

// parityNext returns the size of the next parity packet to send, if any.
func (s *Sender) parityNext() (int, bool) {
	if s.fec == nil || !s.stage() {
		return 0, false
	}
	return len(s.fec.staged), true
}

// pollParity sends the next parity packet if the rate limiter allows;
// blocked means one is waiting for it (so no ODATA may pass).
func (s *Sender) pollParity(t int64, buf []byte) (out []byte, ok, blocked bool) {
	f := s.fec
	if !s.stage() {
		return buf, false, false
	}
	if !s.bucket.take(t, len(f.staged)+s.cfg.IPOverhead) {
		return buf, false, true
	}
	e := f.q[f.qHead]
	start := len(buf)
	buf = append(buf, f.staged...)
	f.pop()
	wire.RewriteAsRDATA(buf[start:], s.trail)
	if s.inWindow(e.tg) {
		g := s.slot(e.tg)
		if g.parPend > 0 {
			g.parPend--
		}
		g.parAt = t
	}
	if e.pro {
		s.stats.ParityProactive++
	} else {
		s.stats.ParityOnDemand++
	}
	s.stats.RDATA++
	s.stats.RDATABytes += uint64(len(buf) - start)
	s.restartHeartbeat(t)
	return buf, true, false
}
