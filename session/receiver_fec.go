package session

import (
	"net/netip"
	"time"

	"github.com/relmcast/relmcast/fec"
	"github.com/relmcast/relmcast/internal/wire"
)

// FEC on the receiver (see FECConfig for the sender's side).
//
// A source announces FEC in the OPT_PARITY_PRM of its SPMs: group size k
// and whether it sends pro-active parity and answers parity NAKs. From its
// first such SPM on, the source gets a fec.Decoder (rebuilt if k changes),
// fed with every original data packet (ODATA, and RDATA without
// OPT_PARITY) and every parity packet; parity packets never enter the
// receive window. Each original the decoder rebuilds fills its slot
// exactly as an RDATA would (its fragment option checked like a parsed
// one), and counts as FECRecovered, not as a Repair. Passive receivers
// decode too.
//
// NAKs change in two ways:
//   - The first NAK of a sequence number whose group FEC may still repair
//     without it is held back once: with pro-active parity, while the
//     group is not yet followed by later data (the lead is inside it or at
//     its end: its parity is on its way); with on-demand parity, while the
//     group is incomplete (a parity NAK can follow once it is). The NAK
//     tracker, which believes it NAKed, NAKs again after NAKRepeat (one of
//     its retries is spent).
//   - With on-demand parity, sequence numbers of a group that is complete
//     (its last number not beyond the lead) are NAKed with one parity NAK
//     per group, Seq tg_sqn|(n-1), n = Decoder.Need: n fresh parity packets
//     repair any n losses of the group, which spares the source one repair
//     per receiver and loss. The others (the lead's incomplete group, a
//     group the decoder no longer holds or could not decode) are NAKed
//     selectively, and so is a number after fecParityRounds parity NAKs. A
//     parity NCF (OPT_PARITY) confirms the NAK for every number of its
//     group.
//
// fecParityRounds is how many times a number is NAKed with parity NAKs
// before it is NAKed selectively: parity can run out (a group has at most
// Code.MaxParity distinct parity packets, and the source repeats them once
// they are used up) or be refused (the group left the source's window).
const fecParityRounds = 3

type rxFEC struct {
	dec       *fec.Decoder
	k         uint32
	proactive bool
	onDemand  bool
}

// fecSPM applies an SPM's OPT_PARITY_PRM (or its absence) to s.
func (r *Receiver) fecSPM(s *source, p *wire.Packet) {
	if !p.HasParityPrm {
		if s.fec != nil {
			s.fec.proactive, s.fec.onDemand = false, false
		}
		return
	}
	k := p.ParityPrm.GroupSize
	if k < fec.MinGroupSize || k > fec.MaxGroupSize || k&(k-1) != 0 {
		r.stats.FECRejected++
		return
	}
	if s.fec == nil || s.fec.k != k {
		code := r.codes[k]
		if code == nil {
			code, _ = fec.NewCode(int(k))
			r.codes[k] = code
		}
		dec, err := fec.NewDecoder(code, fec.DecoderConfig{
			MaxTSDU: r.cfg.FECMaxTSDU,
			Groups:  max(2, r.cfg.FECWindow/int(k)),
		})
		if err != nil {
			r.stats.FECRejected++
			return
		}
		s.fec = &rxFEC{dec: dec, k: k}
	}
	s.fec.proactive, s.fec.onDemand = p.ParityPrm.Proactive, p.ParityPrm.OnDemand
}

// onParity handles a packet with OPT_PARITY: a parity packet (RDATA, or
// ODATA as the RFC has pro-active parity) goes to the source's decoder, a
// parity NCF confirms parity NAKs. Nothing here creates a source.
func (r *Receiver) onParity(now time.Time, p *wire.Packet) {
	s := r.byTSI[p.TSI()]
	if s == nil || !s.started || s.fec == nil || p.Type == wire.TypeSPM {
		r.stats.Dropped++
		return
	}
	s.lastHeard = now
	switch p.Type {
	case wire.TypeNCF:
		r.stats.NCFs++
		s.st.ncfs++
		for i := -1; i < p.NAKListLen; i++ {
			q := p.Seq
			if i >= 0 {
				q = p.NAKList[i]
			}
			tg := s.ext(q) &^ uint64(s.fec.k-1)
			for seq := max(tg, s.head); seq < tg+uint64(s.fec.k) && seq <= s.lead; seq++ {
				s.nak.NCF(now, seq)
			}
		}
	default:
		if s.closing && s.ext(p.Seq) > s.lead {
			r.stats.Dropped++
			return
		}
		var err error
		r.rec, err = s.fec.dec.AddParity(r.rec[:0], fec.Parity{
			Seq:         p.Seq,
			Payload:     p.Payload,
			VarPktLen:   p.Options&wire.OptVarPktLen != 0,
			HasFragment: p.HasFragment,
			Fragment:    fec.Fragment(p.Fragment),
		})
		if err != nil {
			r.stats.FECRejected++
			return
		}
		r.stats.FECParity++
		r.recovered(now, s)
		if t := s.ext(p.Trail); t <= s.ext(p.Seq) { // a trail past the packet itself is bogus
			r.onTrail(s, t)
		}
	}
	r.maybeFinish(s)
}

// fecOriginal feeds an original data packet to the decoder of s.
func (r *Receiver) fecOriginal(now time.Time, s *source, p *wire.Packet) {
	var err error
	r.rec, err = s.fec.dec.AddOriginal(r.rec[:0], p.Seq, fec.Original{
		TSDU:        p.Payload,
		HasFragment: p.HasFragment,
		Fragment:    fec.Fragment(p.Fragment),
	})
	if err != nil {
		r.stats.FECRejected++
		return
	}
	r.recovered(now, s)
}

// recovered inserts what the decoder just rebuilt (r.rec).
func (r *Receiver) recovered(now time.Time, s *source) {
	for i := range r.rec {
		o := &r.rec[i]
		if o.HasFragment {
			// The checks wire.Parse applies to a received fragment.
			f, n := o.Fragment, uint32(len(o.TSDU))
			if f.Length < n || f.Length > wire.MaxAPDU || o.Seq-f.First >= 1<<31 ||
				uint64(f.Offset)+uint64(n) > uint64(f.Length) {
				r.stats.FECRejected++
				continue
			}
		}
		r.insert(now, s, o.Seq, o.TSDU, o.HasFragment, wire.Fragment(o.Fragment), 0, byFEC)
	}
	clear(r.rec) // do not keep the decoder's memory reachable from here
	r.rec = r.rec[:0]
}

// fecNAKs takes the sequence numbers the NAK tracker wants NAKed now,
// holds back or sends parity NAKs for those FEC can repair (see rxFEC), and
// returns the rest, to be NAKed selectively.
func (r *Receiver) fecNAKs(s *source, naks []uint64) []uint64 {
	f := s.fec
	if f == nil || !f.proactive && !f.onDemand {
		return naks
	}
	k := uint64(f.k)
	maxPar := f.dec.Code().MaxParity()
	keep := naks[:0]
	r.pnak = r.pnak[:0]
	lastTG := ^uint64(0)
	for _, q := range naks {
		if q < s.head || q > s.lead {
			keep = append(keep, q)
			continue
		}
		tg := q &^ (k - 1)
		sl := s.slot(q)
		if !sl.held && (f.proactive && s.lead < tg+k || f.onDemand && s.lead < tg+k-1) {
			sl.held = true
			continue
		}
		if f.onDemand && tg+k-1 <= s.lead && sl.pnaks < fecParityRounds {
			if tg == lastTG {
				sl.pnaks++
				continue // this group's parity NAK is built already
			}
			if need := f.dec.Need(uint32(tg)); need > 0 && need <= maxPar {
				r.pnak = append(r.pnak, uint32(tg)|uint32(need-1))
				lastTG = tg
				sl.pnaks++
				continue
			}
		}
		keep = append(keep, q)
	}
	r.sendParityNAKs(s, r.pnak)
	return keep
}

// sendParityNAKs queues parity NAK packets for entries (tg_sqn|(n-1)), up
// to 63 each.
func (r *Receiver) sendParityNAKs(s *source, entries []uint32) {
	nla := s.unicast()
	dst := netip.AddrPortFrom(nla, r.cfg.DPort)
	for len(entries) > 0 {
		n := min(len(entries), wire.MaxNAKSeqs)
		p := wire.Packet{
			Type:      wire.TypeNAK,
			Options:   wire.OptParity,
			SPort:     s.dport,
			DPort:     s.tsi.Port,
			GSI:       s.tsi.GSI,
			Seq:       entries[0],
			SourceNLA: nla,
			GroupNLA:  s.group,
		}
		p.NAKListLen = copy(p.NAKList[:], entries[1:n])
		entries = entries[n:]
		if !r.nakAllowed() {
			continue
		}
		r.out.push(&p, dst)
		r.stats.NAKPackets++
		r.stats.ParityNAKs += uint64(n)
		s.st.nakPackets++
		s.st.parityNAKs += uint64(n)
	}
}
