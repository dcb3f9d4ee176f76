package wire

import "encoding/binary"

// ODATA/RDATA body (RFC 3208 §8.2): data sqn, TXW_TRAIL, options, then
// exactly tsdu_length payload bytes (OpenPGM rejects trailing bytes).

func (p *Packet) parseData(b []byte, tsduLen int) error {
	if len(b) < DataHeaderLen {
		return ErrShort
	}
	p.Seq = binary.BigEndian.Uint32(b[0:])
	p.Trail = binary.BigEndian.Uint32(b[4:])
	b = b[DataHeaderLen:]
	if p.Options&OptPresent != 0 {
		n, err := parseOptions(b, p)
		if err != nil {
			return err
		}
		b = b[n:]
	}
	if len(b) != tsduLen {
		return ErrLength
	}
	p.Payload = b
	if p.Batch && p.Options&OptParity == 0 {
		if p.HasFragment {
			return ErrBatch // a batch is never fragmented
		}
		if _, err := CheckBatch(b); err != nil {
			return err
		}
	}
	// In a parity packet OPT_FRAGMENT is Reed-Solomon encoded along with the
	// payload, so its fields mean nothing until decoded: OpenPGM (rxw.c)
	// checks fragments of original data only, and so do we.
	if p.HasFragment && p.Options&OptParity == 0 {
		f := p.Fragment
		// OpenPGM's checks (rxw.c): the APDU is at least this TSDU and at
		// most 64 KiB, and the first fragment is not after this one. The
		// last check, that the fragment lies inside the APDU, is ours:
		// OpenPGM ignores the offset and concatenates in sequence order,
		// and its own senders always satisfy it.
		if f.Length < uint32(tsduLen) || f.Length > MaxAPDU ||
			p.Seq-f.First >= 1<<31 ||
			uint64(f.Offset)+uint64(tsduLen) > uint64(f.Length) {
			return ErrFragment
		}
	}
	return nil
}

func (p *Packet) appendData(b []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, p.Seq)
	b = binary.BigEndian.AppendUint32(b, p.Trail)
	b = p.appendOptions(b)
	return append(b, p.Payload...)
}

// RewriteAsRDATA turns an encoded ODATA (or RDATA) packet in place into
// RDATA carrying the current trail, and recomputes the checksum, as
// OpenPGM's send_rdata does: sequence number, options and payload are
// unchanged.
func RewriteAsRDATA(pkt []byte, trail uint32) {
	pkt[4] = byte(TypeRDATA)
	binary.BigEndian.PutUint32(pkt[HeaderLen+4:], trail)
	SetChecksum(pkt)
}

// SetTrail rewrites the trail of an encoded ODATA packet and its checksum.
func SetTrail(pkt []byte, trail uint32) {
	binary.BigEndian.PutUint32(pkt[HeaderLen+4:], trail)
	SetChecksum(pkt)
}
