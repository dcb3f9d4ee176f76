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
	// sum adds the 16-bit words byte-swapped; the one's complement sum of
	// swapped words is the swapped sum (RFC 1071 §2(B)), so swap it back.
	c := ^bits.ReverseBytes16(fold(sum(b)))
	if c == 0 {
		return 0xFFFF
	}
	return c
}

// sum is the one's complement sum of b taken as 16-bit words in
// little-endian order, i.e. of the byte-swapped big-endian words, in a
// 64-bit accumulator. Loading in native order on little-endian machines
// saves a byte swap per word; on big-endian ones it is merely correct.
// Every load starts at an even offset, so word boundaries are kept.
func sum(b []byte) uint64 {
	var acc, carry uint64
	for len(b) >= 64 {
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b), 0)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[8:]), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[16:]), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[24:]), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[32:]), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[40:]), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[48:]), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[56:]), carry)
		// End-around carry. This cannot overflow: whenever an add in the
		// chain carries out, its 64-bit result is at most 2^64-2.
		acc += carry
		b = b[64:]
	}
	for len(b) >= 8 {
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b), 0)
		acc += carry
		b = b[8:]
	}
	var tail uint64
	for i, v := range b { // at most 7 bytes; an odd last byte is padded with 0
		tail |= uint64(v) << (8 * uint(i))
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
// 0xFFFF (which is its own byte swap).
func checksumOK(b []byte) bool { return fold(sum(b)) == 0xFFFF }

// SetChecksum computes and stores the checksum of the encoded packet b.
func SetChecksum(b []byte) {
	b[6], b[7] = 0, 0
	binary.BigEndian.PutUint16(b[6:], Checksum(b))
}
