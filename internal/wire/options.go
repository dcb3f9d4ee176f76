package wire

import "encoding/binary"

// Option types (byte 0 of an option, low 7 bits). optEnd marks the last
// option.
const (
	optLength    = 0x00
	optFragment  = 0x01
	optNAKList   = 0x02
	optJoin      = 0x03
	optParityPrm = 0x08
	optSyn       = 0x0D
	optFin       = 0x0E
	optRst       = 0x0F
	optEnd       = 0x80
)

// maxOptions bounds the option walk: at most 16 options per packet,
// OPT_LENGTH included. OpenPGM does not enforce a limit (a TODO in
// receiver.c); we reject a 17th option as malformed.
const maxOptions = 16

// parseOptions decodes the option block at the start of b into p and
// returns its total length (the OPT_LENGTH total).
//
// Byte 2 of every option (OPX, F bit, reserved) is ignored: OpenPGM fills
// it with uninitialised memory on several send paths (research §3.1), so
// an OPX of "discard packet" is not honoured, unlike RFC 3208 §9. The U bit
// (byte 3, 0x80) is ignored too. Unknown options are skipped.
//
// Repeated options: the first OPT_NAK_LIST wins (OpenPGM source.c stops at
// the first); for OPT_FRAGMENT and OPT_PARITY_PRM the last one wins
// (OpenPGM receiver.c walks them all). The length of every repeat is still
// checked.
func parseOptions(b []byte, p *Packet) (int, error) {
	if len(b) < 4 {
		return 0, ErrShort
	}
	if b[0]&^optEnd != optLength || b[1] != 4 {
		return 0, ErrOptions
	}
	total := int(binary.BigEndian.Uint16(b[2:4]))
	if total < 4 || total > len(b) {
		return 0, ErrOptions
	}
	if b[0]&optEnd != 0 {
		return total, nil // OPT_LENGTH alone
	}
	opts := b[4:total]
	hasNAKList := false
	for n := 1; ; n++ { // n counts OPT_LENGTH
		if n == maxOptions || len(opts) < 4 {
			return 0, ErrOptions
		}
		typ, l := opts[0], int(opts[1])
		if l < 4 || l > len(opts) {
			return 0, ErrOptions
		}
		v := opts[:l]
		switch typ &^ optEnd {
		case optFragment:
			if l != FragmentOptLen {
				return 0, ErrFragment
			}
			p.HasFragment = true
			p.Fragment = Fragment{
				First:  binary.BigEndian.Uint32(v[4:]),
				Offset: binary.BigEndian.Uint32(v[8:]),
				Length: binary.BigEndian.Uint32(v[12:]),
			}
		case optNAKList:
			k := (l - 4) / 4
			if (l-4)%4 != 0 || k > MaxNAKList {
				return 0, ErrNAKList
			}
			if hasNAKList {
				break // first one wins, as in OpenPGM
			}
			hasNAKList = true
			for i := range k {
				p.NAKList[i] = binary.BigEndian.Uint32(v[4+4*i:])
			}
			p.NAKListLen = k
		case optParityPrm:
			if l != 8 {
				return 0, ErrParityPrm
			}
			p.HasParityPrm = true
			p.ParityPrm = ParityPrm{
				Proactive: v[3]&0x01 != 0,
				OnDemand:  v[3]&0x02 != 0,
				GroupSize: binary.BigEndian.Uint32(v[4:]),
			}
		case optFin:
			p.FIN = true
		case optBatch:
			// Byte 3: U (0x80, ignored), framing version (0 only).
			if l != 4 || v[3]&0x7F != 0 {
				return 0, ErrBatch
			}
			p.Batch = true
		case optSyn:
			p.SYN = true
		case optRst:
			// Byte 3: U (0x80), N (0x40, not decoded), 6-bit error code.
			p.RST = true
			p.RSTCode = v[3] & 0x3F
		}
		opts = opts[l:]
		if typ&optEnd != 0 {
			break
		}
	}
	// Bytes between the last option and the OPT_LENGTH total are skipped,
	// as OpenPGM does: the total alone says where the payload starts.
	return total, nil
}

// optionsLen is the encoded size of p's options, 0 when there are none.
func (p *Packet) optionsLen() int {
	n := 0
	if p.HasFragment {
		n += FragmentOptLen
	}
	if p.NAKListLen > 0 {
		n += 4 + 4*p.NAKListLen
	}
	if p.HasParityPrm {
		n += 8
	}
	for _, f := range [...]bool{p.FIN, p.SYN, p.RST, p.Batch} {
		if f {
			n += 4
		}
	}
	if n == 0 {
		return 0
	}
	return 4 + n // OPT_LENGTH
}

// appendOptions encodes p's options, OPT_LENGTH first and the E bit on
// the last one. Byte 2 (OPX/F) is always 0. OpenPGM marks the encoded
// OPT_FRAGMENT of a parity packet with 0x08 there (its F bit; the RFC's is
// 0x04), but no receiver reads it, so we do not set it.
func (p *Packet) appendOptions(b []byte) []byte {
	total := p.optionsLen()
	if total == 0 {
		return b
	}
	b = append(b, optLength, 4, byte(total>>8), byte(total))
	last := len(b)
	if p.HasFragment {
		last = len(b)
		f := p.Fragment
		b = append(b, optFragment, FragmentOptLen, 0, 0)
		b = binary.BigEndian.AppendUint32(b, f.First)
		b = binary.BigEndian.AppendUint32(b, f.Offset)
		b = binary.BigEndian.AppendUint32(b, f.Length)
	}
	if p.NAKListLen > 0 {
		last = len(b)
		b = append(b, optNAKList, byte(4+4*p.NAKListLen), 0, 0)
		for _, s := range p.NAKList[:p.NAKListLen] {
			b = binary.BigEndian.AppendUint32(b, s)
		}
	}
	if p.HasParityPrm {
		last = len(b)
		var flags byte
		if p.ParityPrm.Proactive {
			flags |= 0x01
		}
		if p.ParityPrm.OnDemand {
			flags |= 0x02
		}
		b = append(b, optParityPrm, 8, 0, flags)
		b = binary.BigEndian.AppendUint32(b, p.ParityPrm.GroupSize)
	}
	if p.FIN {
		last = len(b)
		b = append(b, optFin, 4, 0, 0)
	}
	if p.SYN {
		last = len(b)
		b = append(b, optSyn, 4, 0, 0)
	}
	if p.RST {
		last = len(b)
		b = append(b, optRst, 4, 0, p.RSTCode&0x3F)
	}
	if p.Batch {
		last = len(b)
		b = append(b, optBatch, 4, 0, 0)
	}
	b[last] |= optEnd
	return b
}

// networkOptions reports whether p carries network-significant options
// (OpenPGM sets OptNetwork with OPT_NAK_LIST and OPT_PARITY_PRM).
func (p *Packet) networkOptions() bool { return p.NAKListLen > 0 || p.HasParityPrm }
