package fec

import (
	"encoding/binary"
	"errors"

	"github.com/klauspost/reedsolomon"
)

// Limits.
const (
	MinGroupSize = 2   // smallest transmission group (OpenPGM: power of two in 2..128)
	MaxGroupSize = 128 // largest transmission group
	// MaxTSDU is the largest original TSDU the package accepts: a parity
	// payload over it, L+2 bytes with the length trailer, must still fit
	// PGM's 16-bit tsdu_length.
	MaxTSDU = 65535 - trailerLen
)

const (
	trailerLen = 2  // §8.6: original length, u16 little-endian ("host order")
	fragLen    = 12 // OPT_FRAGMENT's three u32 fields: first sqn, offset, APDU length
	tailLen    = trailerLen + fragLen
)

// Errors. They are plain sentinels (compare with errors.Is) so that bad
// input costs no allocation.
var (
	ErrGroupSize   = errors.New("fec: group size must be a power of two in 2..128")
	ErrMaxTSDU     = errors.New("fec: MaxTSDU out of range")
	ErrParityIndex = errors.New("fec: parity index out of range")
	ErrTooLong     = errors.New("fec: TSDU or parity payload longer than the configured maximum")
	ErrLength      = errors.New("fec: parity payload too short for its length trailer")
	ErrFragment    = errors.New("fec: OPT_FRAGMENT with all-zero fields cannot be FEC-coded")
	ErrGroup       = errors.New("fec: originals do not form one transmission group")
	ErrSequence    = errors.New("fec: sequence number does not continue the transmission group")
	ErrIncomplete  = errors.New("fec: transmission group incomplete")
	ErrMismatch    = errors.New("fec: packets of one transmission group disagree on the parity shape")
	ErrCorrupt     = errors.New("fec: reconstructed packet is corrupt")
)

// Fragment is the value of OPT_FRAGMENT. It has the layout of
// internal/wire.Fragment, so the two convert with a plain conversion:
// fec.Fragment(p.Fragment), wire.Fragment(r.Fragment).
type Fragment struct {
	First  uint32 // sequence number of the APDU's first TPDU
	Offset uint32 // byte offset of this fragment in the APDU
	Length uint32 // total APDU length in bytes
}

// Original is one original data packet (ODATA, or RDATA repeating it) as
// far as FEC is concerned: its TSDU and its OPT_FRAGMENT, if any. Other
// options are not covered (our senders put none on data packets).
type Original struct {
	TSDU        []byte
	HasFragment bool
	Fragment    Fragment
}

// Parity is one parity packet, sent as RDATA with OPT_PARITY (0x80) in the
// header options.
type Parity struct {
	// Seq is the packet's data sequence number: the group's tg_sqn | h.
	Seq uint32
	// Payload is the TSDU: L bytes, or L+2 with VarPktLen, where L is the
	// longest original TSDU of the group.
	Payload []byte
	// VarPktLen is OPT_VAR_PKTLEN (0x40): the originals' lengths differ and
	// Payload ends with the parity of their length trailers.
	VarPktLen bool
	// HasFragment: the packet carries OPT_LENGTH and an OPT_FRAGMENT whose
	// three fields are Fragment, the parity of the originals' OPT_FRAGMENT
	// fields (all zero for originals without one). Set when any original
	// of the group has OPT_FRAGMENT. The fields mean nothing until decoded.
	HasFragment bool
	Fragment    Fragment
}

// Code is the Reed–Solomon code of OpenPGM for one transmission group size
// k: RS(255, k) over GF(2^8)/0x11D with Rizzo's systematic Vandermonde
// generator (research §8.7). It is immutable and safe for concurrent use;
// share one per k.
type Code struct {
	k     int
	shift uint     // log2 k
	rows  [][]byte // parity rows 0..MaxParity()-1, k coefficients each
}

// NewCode returns the code for transmission groups of k packets; k must be
// a power of two in 2..128 (OpenPGM's constraint; the group size of a
// source comes from OPT_PARITY_PRM in its SPMs).
func NewCode(k int) (*Code, error) {
	if k < MinGroupSize || k > MaxGroupSize || k&(k-1) != 0 {
		return nil, ErrGroupSize
	}
	c := &Code{k: k}
	for 1<<c.shift < k {
		c.shift++
	}
	c.rows = parityMatrix(k, c.MaxParity())
	return c, nil
}

// K returns the transmission group size.
func (c *Code) K() int { return c.k }

// MaxParity returns how many distinct parity packets a group can have:
// min(k, 255-k). RS(255, k) has 255-k parity rows, and the parity index h
// travels in the low log2(k) bits of the parity packet's sequence number,
// so h < k as well. Valid parity indexes are 0..MaxParity()-1.
func (c *Code) MaxParity() int { return min(c.k, 255-c.k) }

// Group returns the transmission group sequence number (tg_sqn) of sqn:
// sqn with its low log2(k) bits cleared.
func (c *Code) Group(sqn uint32) uint32 { return sqn &^ uint32(c.k-1) }

// Index returns the position of sqn in its group: the original's index for
// a data packet, the parity index h for a parity packet.
func (c *Code) Index(sqn uint32) int { return int(sqn & uint32(c.k-1)) }

// Row returns a copy of the coefficients of parity row h: parity h is
// Σ_i Row(h)[i]·original_i. Row k+h of OpenPGM's generator matrix.
func (c *Code) Row(h int) ([]byte, error) {
	if h < 0 || h >= c.MaxParity() {
		return nil, ErrParityIndex
	}
	return append([]byte(nil), c.rows[h]...), nil
}

// Parity computes parity packet h of the complete transmission group
// whose first sequence number is tg from its k originals (in sequence
// order): the on-demand path, for a group the sender has to rebuild from
// its transmit window. Payload reuses buf's memory when it is large
// enough; Parity does not allocate otherwise and keeps no reference to
// originals. The result is identical to Encoder.Parity for the same group.
func (c *Code) Parity(buf []byte, tg uint32, h int, originals []Original) (Parity, error) {
	if h < 0 || h >= c.MaxParity() {
		return Parity{}, ErrParityIndex
	}
	if len(originals) != c.k || c.Index(tg) != 0 {
		return Parity{}, ErrGroup
	}
	var s shape
	for i := range originals {
		o := &originals[i]
		if len(o.TSDU) > MaxTSDU {
			return Parity{}, ErrTooLong
		}
		if o.HasFragment && o.Fragment == (Fragment{}) {
			return Parity{}, ErrFragment
		}
		s.add(i, len(o.TSDU), o.HasFragment)
	}
	var ll reedsolomon.LowLevel
	row := c.rows[h]
	out := grow(buf, s.l)
	clear(out)
	var tail [tailLen]byte
	for i := range originals {
		o := &originals[i]
		if len(o.TSDU) > 0 {
			ll.GalMulSliceXor(row[i], o.TSDU, out)
		}
		addTail(&tail, row[i], len(o.TSDU), o.HasFragment, o.Fragment)
	}
	return s.finish(tg|uint32(h), out, &tail), nil
}

// shape tracks what a group's parity covers: the longest TSDU, whether
// lengths differ, and whether any original has OPT_FRAGMENT.
type shape struct {
	l, min int
	frag   bool
}

func (s *shape) add(i, n int, frag bool) {
	if i == 0 {
		*s = shape{l: n, min: n, frag: frag}
		return
	}
	s.l, s.min = max(s.l, n), min(s.min, n)
	s.frag = s.frag || frag
}

func (s *shape) variable() bool { return s.min != s.l }

// finish turns the data part out (s.l bytes) and the accumulated tail
// parity into a Parity, appending the trailer when lengths differ.
func (s *shape) finish(seq uint32, out []byte, tail *[tailLen]byte) Parity {
	p := Parity{Seq: seq, VarPktLen: s.variable(), HasFragment: s.frag}
	if p.VarPktLen {
		out = append(out, tail[:trailerLen]...)
	}
	p.Payload = out
	if p.HasFragment {
		p.Fragment = getFragment(tail[trailerLen:])
	}
	return p
}

// addTail adds coef times an original's tail (its length trailer and its
// OPT_FRAGMENT fields) to the tail parity t. The caller keeps only the
// parts the group's shape uses.
func addTail(t *[tailLen]byte, coef byte, n int, hasFrag bool, f Fragment) {
	if coef == 0 {
		return
	}
	t[0] ^= gfMul(coef, byte(n))
	t[1] ^= gfMul(coef, byte(n>>8))
	if !hasFrag {
		return
	}
	var fb [fragLen]byte
	putFragment(fb[:], f)
	for j, b := range fb {
		t[trailerLen+j] ^= gfMul(coef, b)
	}
}

// putFragment writes OPT_FRAGMENT's fields as they are on the wire (network
// order, option bytes 4..15); these 12 bytes are what FEC covers.
func putFragment(b []byte, f Fragment) {
	binary.BigEndian.PutUint32(b[0:], f.First)
	binary.BigEndian.PutUint32(b[4:], f.Offset)
	binary.BigEndian.PutUint32(b[8:], f.Length)
}

func getFragment(b []byte) Fragment {
	return Fragment{
		First:  binary.BigEndian.Uint32(b[0:]),
		Offset: binary.BigEndian.Uint32(b[4:]),
		Length: binary.BigEndian.Uint32(b[8:]),
	}
}

// grow returns buf[:n], reallocating only if buf is too small.
func grow(buf []byte, n int) []byte {
	if cap(buf) < n+trailerLen {
		return make([]byte, n, n+trailerLen)
	}
	return buf[:n]
}
