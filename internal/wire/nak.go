package wire

import "encoding/binary"

// NAK, NNAK and NCF body (RFC 3208 §8.3): requested sqn, source NLA,
// multicast group NLA, options (OPT_NAK_LIST). OpenPGM picks the layout by
// the source NLA's family and accepts mixed families; so do we.

func (p *Packet) parseNAK(b []byte) error {
	if len(b) < 4 {
		return ErrShort
	}
	p.Seq = binary.BigEndian.Uint32(b)
	off := 4
	src, n, err := parseNLA(b[off:])
	if err != nil {
		return err
	}
	off += n
	grp, n, err := parseNLA(b[off:])
	if err != nil {
		return err
	}
	off += n
	p.SourceNLA, p.GroupNLA = src, grp
	return p.optionsFor(b[off:])
}

func (p *Packet) appendNAK(b []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, p.Seq)
	b = appendNLA(b, p.SourceNLA)
	b = appendNLA(b, p.GroupNLA)
	return p.appendOptions(b)
}
