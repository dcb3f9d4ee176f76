package wire

import (
	"encoding/binary"
	"math/bits"
)

// Checksum is the RFC 1071 Internet checksum over b, as PGM uses it: over
// the whole PGM packet with the checksum field zeroed, no pseudo-header.
// A result of 0 is returned as 0xFFFF, since 0 on the wire means "no
// checksum" (OpenPGM pgm_csum_fold does the same).
func Checksum(b []byte) uint16 {
	c := ^fold(sum(b))
	if c == 0 {
		return 0xFFFF
	}
	return c
}

// sum adds b as big-endian 16-bit words into a 64-bit one's-complement
// accumulator, eight bytes at a time.
func sum(b []byte) uint64 {
	var acc, carry uint64
	for len(b) >= 32 {
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b), 0)
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[8:]), carry)
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[16:]), carry)
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[24:]), carry)
		// End-around carry; with a carry-in the sum can be all ones plus a
		// carry, so add it in two steps.
		acc, carry = bits.Add64(acc, carry, 0)
		acc += carry
		b = b[32:]
	}
	for len(b) >= 8 {
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b), 0)
		acc += carry
		b = b[8:]
	}
	var tail uint64
	for i, v := range b { // at most 7 bytes, left-aligned as big-endian
		tail |= uint64(v) << (56 - 8*uint(i))
	}
	acc, carry = bits.Add64(acc, tail, 0)
	return acc + carry
}

// fold reduces a 64-bit one's-complement sum to 16 bits.
func fold(s uint64) uint16 {
	s = (s >> 32) + (s & 0xffffffff)
	s = (s >> 32) + (s & 0xffffffff)
	s = (s >> 16) + (s & 0xffff)
	s = (s >> 16) + (s & 0xffff)
	s = (s >> 16) + (s & 0xffff)
	return uint16(s)
}

// checksumOK reports whether packet b, checksum field included, sums to
// 0xFFFF.
func checksumOK(b []byte) bool { return fold(sum(b)) == 0xFFFF }

// SetChecksum computes and stores the checksum of the encoded packet b.
func SetChecksum(b []byte) {
	b[6], b[7] = 0, 0
	binary.BigEndian.PutUint16(b[6:], Checksum(b))
}
