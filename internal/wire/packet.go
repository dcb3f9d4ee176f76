package wire

import "encoding/binary"

// Parse decodes the PGM packet in b (a whole UDP payload) into p. It
// verifies the checksum (a zero checksum means "none" and is accepted on
// every type but ODATA and RDATA, as in OpenPGM), never allocates, and
// returns one of the Err variables on malformed input. p.Payload aliases b.
//
// ErrUnsupported is returned, with the header fields filled in, for POLL,
// POLR, ACK and unknown types.
//
// Like OpenPGM, Parse ignores tsdu_length on packets other than ODATA and
// RDATA, and ignores bytes after the end of an SPM, NAK, NNAK, NCF or SPMR
// (after the OPT_LENGTH total when options are present); OpenPGM checks
// only minimum lengths there. ODATA and RDATA must end exactly at the
// payload (ErrLength).
func Parse(b []byte, p *Packet) error {
	*p = Packet{}
	if len(b) < HeaderLen {
		return ErrShort
	}
	if len(b) > 65535 {
		return ErrTooLong // larger than any UDP payload
	}
	if b[4]&0xC0 != 0 {
		return ErrVersion
	}
	p.SPort = binary.BigEndian.Uint16(b[0:])
	p.DPort = binary.BigEndian.Uint16(b[2:])
	p.Type = Type(b[4])
	p.Options = b[5]
	copy(p.GSI[:], b[8:14])
	tsduLen := int(binary.BigEndian.Uint16(b[14:]))

	csum := binary.BigEndian.Uint16(b[6:])
	if csum == 0 {
		if p.Type == TypeODATA || p.Type == TypeRDATA {
			return ErrNoChecksum
		}
	} else if !checksumOK(b) {
		return ErrChecksum
	}

	body := b[HeaderLen:]
	switch p.Type {
	case TypeSPM:
		return p.parseSPM(body)
	case TypeODATA, TypeRDATA:
		return p.parseData(body, tsduLen)
	case TypeNAK, TypeNNAK, TypeNCF:
		return p.parseNAK(body)
	case TypeSPMR:
		return p.parseOptionsOnly(body)
	}
	return ErrUnsupported
}

// optionsFor parses the options of a non-data packet, whose block must
// start with a 4-byte OPT_LENGTH (OpenPGM drops SPMs, NAKs and NCFs
// otherwise).
func (p *Packet) optionsFor(b []byte) error {
	if p.Options&OptPresent == 0 {
		return nil
	}
	_, err := parseOptions(b, p)
	return err
}

func (p *Packet) parseOptionsOnly(b []byte) error { return p.optionsFor(b) }

// Len is the encoded size of p.
func (p *Packet) Len() int {
	n := HeaderLen + p.optionsLen()
	switch p.Type {
	case TypeSPM:
		n += 12 + nlaLen(p.PathNLA)
	case TypeODATA, TypeRDATA:
		n += DataHeaderLen + len(p.Payload)
	case TypeNAK, TypeNNAK, TypeNCF:
		n += 4 + nlaLen(p.SourceNLA) + nlaLen(p.GroupNLA)
	}
	return n
}

// Append encodes p onto b with its checksum and returns the extended
// slice. It fails only on packets that cannot be encoded: an unsupported
// type, an invalid NLA, a NAK list longer than MaxNAKList, or a packet over
// 65535 bytes.
func (p *Packet) Append(b []byte) ([]byte, error) {
	switch p.Type {
	case TypeSPM:
		if !p.PathNLA.IsValid() {
			return b, ErrNLA
		}
	case TypeNAK, TypeNNAK, TypeNCF:
		if !p.SourceNLA.IsValid() || !p.GroupNLA.IsValid() {
			return b, ErrNLA
		}
	case TypeODATA, TypeRDATA, TypeSPMR:
	default:
		return b, ErrUnsupported
	}
	if p.NAKListLen < 0 || p.NAKListLen > MaxNAKList {
		return b, ErrNAKList
	}
	if p.Len() > 65535 {
		return b, ErrTooLong
	}
	start := len(b)
	opts := p.Options &^ (OptPresent | OptNetwork)
	if p.optionsLen() > 0 {
		opts |= OptPresent
		if p.networkOptions() {
			opts |= OptNetwork
		}
	}
	var tsdu int
	if p.Type == TypeODATA || p.Type == TypeRDATA {
		tsdu = len(p.Payload)
	}
	b = binary.BigEndian.AppendUint16(b, p.SPort)
	b = binary.BigEndian.AppendUint16(b, p.DPort)
	b = append(b, byte(p.Type), opts, 0, 0)
	b = append(b, p.GSI[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(tsdu))
	switch p.Type {
	case TypeSPM:
		b = p.appendSPM(b)
	case TypeODATA, TypeRDATA:
		b = p.appendData(b)
	case TypeNAK, TypeNNAK, TypeNCF:
		b = p.appendNAK(b)
	case TypeSPMR:
		b = p.appendOptions(b)
	}
	SetChecksum(b[start:])
	return b, nil
}
