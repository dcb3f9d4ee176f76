package wire

import "encoding/binary"

// SPM body (RFC 3208 §8.1): SPM sqn, TXW_TRAIL, TXW_LEAD, path NLA,
// options. OpenPGM advertises an empty window as trail 0, lead 0xFFFFFFFF
// and never uses the RFC's "no window" encoding.

func (p *Packet) parseSPM(b []byte) error {
	if len(b) < 12 {
		return ErrShort
	}
	p.Seq = binary.BigEndian.Uint32(b[0:])
	p.Trail = binary.BigEndian.Uint32(b[4:])
	p.Lead = binary.BigEndian.Uint32(b[8:])
	nla, n, err := parseNLA(b[12:])
	if err != nil {
		return err
	}
	p.PathNLA = nla
	if err := p.optionsFor(b[12+n:]); err != nil {
		return err
	}
	if p.HasParityPrm {
		// OpenPGM drops an SPM whose OPT_PARITY_PRM has no flag set or a
		// group size outside 2..128.
		pp := p.ParityPrm
		if !pp.Proactive && !pp.OnDemand || pp.GroupSize < 2 || pp.GroupSize > 128 {
			return ErrParityPrm
		}
	}
	return nil
}

func (p *Packet) appendSPM(b []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, p.Seq)
	b = binary.BigEndian.AppendUint32(b, p.Trail)
	b = binary.BigEndian.AppendUint32(b, p.Lead)
	b = appendNLA(b, p.PathNLA)
	return p.appendOptions(b)
}
