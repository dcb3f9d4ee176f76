package fec

import "github.com/klauspost/reedsolomon"

// Encoder computes the pro-active parity of one source's transmission
// groups while the originals are being sent. Feed every original ODATA to
// Add in sequence order; when Complete reports true, take the group's
// parity packets with Parity before the next Add, which starts the next
// group.
//
// Encoding is progressive: each Add folds its TSDU into the configured
// parity rows (reedsolomon's SIMD multiply-add, one call per row: what
// EncodeIdx does for small shards, without its large-shard path that
// allocates on every call), so the parity is ready the moment the k-th
// original is added and the Encoder keeps no copy of the originals. Only the rows 0..rows-1 chosen at NewEncoder are computed;
// any other parity (on-demand, for an older group) comes from
// Code.Parity over the originals in the sender's transmit window.
//
// An Encoder is not safe for concurrent use.
type Encoder struct {
	c       *Code
	maxTSDU int
	par     [][]byte // rows buffers of maxTSDU: parity of the data part
	dirty   int      // bytes of par possibly non-zero (the last group's L)

	tg    uint32
	n     int // originals added to the group at tg; 0: no group
	s     shape
	lens  []uint16
	frags []Fragment
	hasF  []bool
}

// NewEncoder returns an Encoder for the code c, originals of at most
// maxTSDU bytes, and parity rows 0..rows-1 (the pro-active parity count,
// at most c.MaxParity(); 0 is allowed but leaves Parity nothing to give).
func NewEncoder(c *Code, maxTSDU, rows int) (*Encoder, error) {
	if maxTSDU < 0 || maxTSDU > MaxTSDU {
		return nil, ErrMaxTSDU
	}
	if rows < 0 || rows > c.MaxParity() {
		return nil, ErrParityIndex
	}
	e := &Encoder{
		c:       c,
		maxTSDU: maxTSDU,
		par:     make([][]byte, rows),
		lens:    make([]uint16, c.k),
		frags:   make([]Fragment, c.k),
		hasF:    make([]bool, c.k),
	}
	flat := make([]byte, rows*maxTSDU)
	for h := range e.par {
		e.par[h] = flat[h*maxTSDU : (h+1)*maxTSDU : (h+1)*maxTSDU]
	}
	return e, nil
}

// Code returns the Encoder's code.
func (e *Encoder) Code() *Code { return e.c }

// Rows returns the number of parity rows the Encoder computes.
func (e *Encoder) Rows() int { return len(e.par) }

// Add folds the original with sequence number sqn into its transmission
// group. A sequence number at a group boundary (index 0) starts a new
// group, discarding any unfinished one; any other must follow the previous
// Add directly. Otherwise Add returns ErrSequence and the group is
// abandoned: no parity for it, and Adds up to the next boundary return
// ErrSequence too. That is harmless: those packets are simply not
// FEC-protected (NAK repair still works), as happens when a sender starts
// mid-group. ErrTooLong and ErrFragment leave the Encoder unchanged.
func (e *Encoder) Add(sqn uint32, o Original) error {
	if len(o.TSDU) > e.maxTSDU {
		return ErrTooLong
	}
	if o.HasFragment && o.Fragment == (Fragment{}) {
		return ErrFragment
	}
	i := e.c.Index(sqn)
	switch {
	case i == 0:
		e.begin(sqn)
	case e.n == 0 || e.n == e.c.k || sqn != e.tg+uint32(e.n):
		e.n = 0
		return ErrSequence
	}
	n := len(o.TSDU)
	if n > 0 {
		var ll reedsolomon.LowLevel
		for h, p := range e.par {
			ll.GalMulSliceXor(e.c.rows[h][i], o.TSDU, p)
		}
	}
	e.s.add(i, n, o.HasFragment)
	e.dirty = max(e.dirty, n)
	e.lens[i] = uint16(n)
	e.frags[i] = o.Fragment
	e.hasF[i] = o.HasFragment
	e.n++
	return nil
}

func (e *Encoder) begin(tg uint32) {
	for h := range e.par {
		clear(e.par[h][:e.dirty])
	}
	e.dirty = 0
	e.tg = tg
	e.n = 0
}

// Complete reports whether the current group has all k originals, so its
// parity can be taken.
func (e *Encoder) Complete() bool { return e.n == e.c.k }

// Group returns the first sequence number (tg_sqn) of the current group;
// meaningful once an Add has started one.
func (e *Encoder) Group() uint32 { return e.tg }

// Pending returns how many more originals complete the current group: 0
// when no group is in progress or it is complete. To flush parity at a
// pause or at close, the sender sends that many empty (zero-length) ODATA
// packets through its normal path, which Adds them; see the package doc.
func (e *Encoder) Pending() int {
	if e.n == 0 {
		return 0
	}
	return e.c.k - e.n
}

// Parity returns parity packet h (0 <= h < Rows()) of the complete current
// group. Payload reuses buf's memory when it has room for the longest
// TSDU plus the 2-byte trailer; Parity does not allocate otherwise. It may
// be called any number of times until the next Add.
func (e *Encoder) Parity(buf []byte, h int) (Parity, error) {
	if h < 0 || h >= len(e.par) {
		return Parity{}, ErrParityIndex
	}
	if !e.Complete() {
		return Parity{}, ErrIncomplete
	}
	out := grow(buf, e.s.l)
	copy(out, e.par[h][:e.s.l])
	var tail [tailLen]byte
	row := e.c.rows[h]
	for i := range e.c.k {
		addTail(&tail, row[i], int(e.lens[i]), e.hasF[i], e.frags[i])
	}
	return e.s.finish(e.tg|uint32(h), out, &tail), nil
}
