package fec

import (
	"encoding/binary"

	"github.com/klauspost/reedsolomon"
)

// DecoderConfig sizes a Decoder.
type DecoderConfig struct {
	// MaxTSDU is the longest original TSDU the source sends (its max_tsdu);
	// parity payloads may be 2 bytes longer. Required, at most MaxTSDU.
	MaxTSDU int
	// Groups is how many consecutive transmission groups, ending at the
	// newest one seen, the Decoder holds; packets of older groups are
	// ignored. Rounded up to a power of two; 0 means 16. Memory is
	// Groups × k × (MaxTSDU+14) bytes, allocated per group slot on first
	// use. Size it to cover the time a parity repair takes to arrive (NAK
	// back-off plus a round trip) at the source's packet rate.
	Groups int
}

// DecoderStats counts what a Decoder did. Each counter only grows.
type DecoderStats struct {
	Recovered uint64 // originals rebuilt
	Decoded   uint64 // groups in which originals were rebuilt
	Stale     uint64 // packets of groups behind the window, ignored
	Redundant uint64 // packets already held, or of a group finished or given up, ignored
	Evicted   uint64 // groups that left the window with originals still missing
	Rejected  uint64 // packets refused with an error
}

// Recovered is an original rebuilt by the Decoder. TSDU points into the
// Decoder's memory and stays valid until the next call on the Decoder.
type Recovered struct {
	Seq uint32
	Original
}

// Decoder rebuilds lost originals of one source from the parity packets of
// their transmission group. Feed it every original data packet (ODATA, and
// RDATA that is not parity) with AddOriginal and every parity packet with
// AddParity; as soon as a group holds k of its packets and misses
// originals, the call that brought the k-th packet returns the missing
// originals, byte-identical, with their original lengths and fragment
// options. A parity packet's index h is taken from its sequence number,
// never from arrival order.
//
// The Decoder copies what it keeps and holds at most Groups groups; once
// warm it does not allocate. It is not safe for concurrent use.
type Decoder struct {
	c        *Code
	maxTSDU  int
	maxShard int
	groups   []group
	top      uint32 // newest tg seen
	haveTop  bool
	stats    DecoderStats

	// Decode scratch, sized for MaxParity erasures.
	out  [][]byte // rebuilt shards
	a, w []byte   // the erasure system and its inverse workspace
	miss []int    // indexes of the missing originals
}

type groupState uint8

const (
	stateFree       groupState = iota // slot unused
	stateCollecting                   // waiting for k packets
	stateDone                         // nothing missing, or rebuilt
	stateFailed                       // packets disagreed or decoding failed
)

// group is one slot: a transmission group in progress.
type group struct {
	tg    uint32
	state groupState
	bufs  [][]byte // k buffers of maxShard; nil until first use
	free  []int16  // free buffer indexes
	orig  []int16  // buffer of original i, -1 if missing
	olen  []uint16
	ofrag []Fragment
	ohasF []bool
	nOrig int
	par   []parEntry // received parity packets, in arrival order
	// The parity shape, fixed by the first parity packet.
	plen   int // parity payload length
	varLen bool
	frag   bool
}

type parEntry struct {
	h   int
	buf int16
}

// NewDecoder returns a Decoder for the code c.
func NewDecoder(c *Code, cfg DecoderConfig) (*Decoder, error) {
	if cfg.MaxTSDU < 0 || cfg.MaxTSDU > MaxTSDU {
		return nil, ErrMaxTSDU
	}
	g := cfg.Groups
	if g <= 0 {
		g = 16
	}
	if g > 1<<16 {
		g = 1 << 16
	}
	n := 1
	for n < g {
		n <<= 1
	}
	m := c.MaxParity()
	d := &Decoder{
		c:        c,
		maxTSDU:  cfg.MaxTSDU,
		maxShard: cfg.MaxTSDU + tailLen,
		groups:   make([]group, n),
		out:      make([][]byte, m),
		a:        make([]byte, m*m),
		w:        make([]byte, m*m),
		miss:     make([]int, 0, c.k),
	}
	flat := make([]byte, m*d.maxShard)
	for i := range d.out {
		d.out[i] = flat[i*d.maxShard : (i+1)*d.maxShard : (i+1)*d.maxShard]
	}
	return d, nil
}

// Code returns the Decoder's code.
func (d *Decoder) Code() *Code { return d.c }

// Stats returns the counters.
func (d *Decoder) Stats() DecoderStats { return d.stats }

// Reset forgets every group, as for a new source session. Memory is kept.
func (d *Decoder) Reset() {
	for i := range d.groups {
		d.release(&d.groups[i])
	}
	d.haveTop = false
}

// Need returns how many more packets of the group of sqn (originals or
// parity, any of them) let the Decoder rebuild its missing originals: k for
// a group it holds nothing of, 0 when nothing is missing or the Decoder
// cannot help (the group is finished, failed or behind the window). A
// receiver that sends parity NAKs asks for that many: NAK sqn tg_sqn|(n-1).
func (d *Decoder) Need(sqn uint32) int {
	tg := d.c.Group(sqn)
	if d.haveTop && d.behind(tg) {
		return 0
	}
	g := &d.groups[d.slot(tg)]
	if g.state == stateFree || g.tg != tg {
		return d.c.k
	}
	if g.state != stateCollecting {
		return 0
	}
	return d.c.k - g.nOrig - len(g.par)
}

// AddOriginal adds the original data packet sqn and appends to dst the
// originals this lets the Decoder rebuild (possible when parity arrived
// first). o.TSDU is copied. A packet of a group behind the window, or one
// already held, is ignored with no error.
func (d *Decoder) AddOriginal(dst []Recovered, sqn uint32, o Original) ([]Recovered, error) {
	if len(o.TSDU) > d.maxTSDU {
		d.stats.Rejected++
		return dst, ErrTooLong
	}
	if o.HasFragment && o.Fragment == (Fragment{}) {
		d.stats.Rejected++
		return dst, ErrFragment
	}
	g := d.lookup(sqn)
	if g == nil {
		return dst, nil
	}
	i := d.c.Index(sqn)
	if g.state != stateCollecting || g.orig[i] >= 0 {
		d.stats.Redundant++
		return dst, nil
	}
	if len(g.par) > 0 && !g.fits(len(o.TSDU), o.HasFragment) {
		return dst, d.fail(g, ErrMismatch)
	}
	b := g.take()
	copy(g.bufs[b], o.TSDU)
	g.orig[i] = b
	g.olen[i] = uint16(len(o.TSDU))
	g.ofrag[i] = o.Fragment
	g.ohasF[i] = o.HasFragment
	g.nOrig++
	return d.progress(dst, g)
}

// AddParity adds a parity packet (p.Seq, p.Payload, p.VarPktLen and the
// encoded p.HasFragment/p.Fragment as received) and appends to dst the
// originals this lets the Decoder rebuild. p.Payload is copied. Errors:
// ErrParityIndex when h = p.Seq&(k-1) is not below MaxParity (only k=128,
// h=127), ErrTooLong, ErrLength, and ErrMismatch when the packet disagrees
// with the group's other packets (the group is then given up).
func (d *Decoder) AddParity(dst []Recovered, p Parity) ([]Recovered, error) {
	h := d.c.Index(p.Seq)
	if h >= d.c.MaxParity() {
		d.stats.Rejected++
		return dst, ErrParityIndex
	}
	l := len(p.Payload)
	if p.VarPktLen {
		if l < trailerLen {
			d.stats.Rejected++
			return dst, ErrLength
		}
		l -= trailerLen
	}
	if l > d.maxTSDU {
		d.stats.Rejected++
		return dst, ErrTooLong
	}
	g := d.lookup(p.Seq)
	if g == nil {
		return dst, nil
	}
	if g.state != stateCollecting {
		d.stats.Redundant++
		return dst, nil
	}
	for _, e := range g.par {
		if e.h == h {
			d.stats.Redundant++
			return dst, nil
		}
	}
	if len(g.par) == 0 {
		// The first parity fixes the shape; the originals held must fit.
		g.plen, g.varLen, g.frag = len(p.Payload), p.VarPktLen, p.HasFragment
		for i, b := range g.orig {
			if b >= 0 && !g.fits(int(g.olen[i]), g.ohasF[i]) {
				return dst, d.fail(g, ErrMismatch)
			}
		}
	} else if len(p.Payload) != g.plen || p.VarPktLen != g.varLen || p.HasFragment != g.frag {
		return dst, d.fail(g, ErrMismatch)
	}
	b := g.take()
	n := copy(g.bufs[b], p.Payload)
	if p.HasFragment {
		putFragment(g.bufs[b][n:], p.Fragment)
	}
	g.par = append(g.par, parEntry{h: h, buf: b})
	return d.progress(dst, g)
}

// fits reports whether an original of n bytes fits the group's parity
// shape: no longer than L, exactly L without the length trailer, and no
// OPT_FRAGMENT unless the parity covers it.
func (g *group) fits(n int, hasFrag bool) bool {
	l := g.l()
	return n <= l && (g.varLen || n == l) && (g.frag || !hasFrag)
}

// l is the group's L, the longest original TSDU; valid once parity is in.
func (g *group) l() int {
	if g.varLen {
		return g.plen - trailerLen
	}
	return g.plen
}

func (g *group) take() int16 {
	b := g.free[len(g.free)-1]
	g.free = g.free[:len(g.free)-1]
	return b
}

func (d *Decoder) fail(g *group, err error) error {
	g.state = stateFailed
	d.stats.Rejected++
	return err
}

// behind reports whether tg is older than the window of groups held.
func (d *Decoder) behind(tg uint32) bool {
	span := uint32(len(d.groups)-1) << d.c.shift
	return int32(tg-d.top) < 0 && d.top-tg > span
}

func (d *Decoder) slot(tg uint32) int {
	return int(tg>>d.c.shift) & (len(d.groups) - 1)
}

// lookup returns the group of sqn, claiming its slot if needed, or nil if
// the group is behind the window.
func (d *Decoder) lookup(sqn uint32) *group {
	tg := d.c.Group(sqn)
	switch {
	case !d.haveTop:
		d.top, d.haveTop = tg, true
	case int32(tg-d.top) > 0:
		d.top = tg
	case d.behind(tg):
		d.stats.Stale++
		return nil
	}
	g := &d.groups[d.slot(tg)]
	if g.state != stateFree && g.tg == tg {
		return g
	}
	// The slot's occupant, if any, is behind the window now.
	d.release(g)
	d.claim(g, tg)
	return g
}

func (d *Decoder) release(g *group) {
	if g.state == stateCollecting && g.nOrig < d.c.k {
		d.stats.Evicted++
	}
	g.state = stateFree
}

func (d *Decoder) claim(g *group, tg uint32) {
	k := d.c.k
	if g.bufs == nil {
		flat := make([]byte, k*d.maxShard)
		g.bufs = make([][]byte, k)
		for i := range g.bufs {
			g.bufs[i] = flat[i*d.maxShard : (i+1)*d.maxShard : (i+1)*d.maxShard]
		}
		g.free = make([]int16, 0, k)
		g.orig = make([]int16, k)
		g.olen = make([]uint16, k)
		g.ofrag = make([]Fragment, k)
		g.ohasF = make([]bool, k)
		g.par = make([]parEntry, 0, k)
	}
	g.tg, g.state, g.nOrig = tg, stateCollecting, 0
	g.free = g.free[:0]
	for i := k - 1; i >= 0; i-- {
		g.free = append(g.free, int16(i))
	}
	for i := range g.orig {
		g.orig[i] = -1
	}
	g.par = g.par[:0]
}

// progress finishes the group when it is complete, rebuilding what is
// missing once k packets are in.
func (d *Decoder) progress(dst []Recovered, g *group) ([]Recovered, error) {
	k := d.c.k
	if g.nOrig == k {
		g.state = stateDone
		return dst, nil
	}
	if g.nOrig+len(g.par) < k {
		return dst, nil
	}
	n0 := len(dst)
	dst, err := d.decode(dst, g)
	if err != nil {
		g.state = stateFailed
		d.stats.Rejected++
		return dst[:n0], err
	}
	g.state = stateDone
	d.stats.Decoded++
	d.stats.Recovered += uint64(len(dst) - n0)
	return dst, nil
}

// decode rebuilds the e missing originals of g from e of its parity
// packets. With M the missing indexes, H the parity indexes used and P the
// parity rows:
//
//	s_h = p_h - Σ_{i∉M} P[h][i]·d_i = Σ_{j∈M} P[h][j]·d_j
//
// so d_M = A^-1 · s_H with A = P[H][M], an e×e matrix that is invertible
// because the code is MDS (every square submatrix of the parity rows of a
// systematic MDS generator is). That is e·k slice multiply-adds, done by
// reedsolomon's SIMD kernels, and an e×e inversion in scratch space: no
// allocation and no cache of inverses, unlike reedsolomon's Reconstruct.
func (d *Decoder) decode(dst []Recovered, g *group) ([]Recovered, error) {
	var ll reedsolomon.LowLevel
	l := g.l()
	tr := 0
	if g.varLen {
		tr = trailerLen
	}
	s := g.plen // shard size: payload [+ fragment fields]
	if g.frag {
		s += fragLen
	}
	// Complete the shards of the originals held: zero padding to L, then
	// the length trailer and the fragment fields the parity covers.
	d.miss = d.miss[:0]
	for i, b := range g.orig {
		if b < 0 {
			d.miss = append(d.miss, i)
			continue
		}
		buf := g.bufs[b][:s]
		n := int(g.olen[i])
		clear(buf[n:l])
		if tr > 0 {
			binary.LittleEndian.PutUint16(buf[l:], uint16(n))
		}
		if g.frag {
			if g.ohasF[i] {
				putFragment(buf[l+tr:], g.ofrag[i])
			} else {
				clear(buf[l+tr : s])
			}
		}
	}
	e := len(d.miss)
	par := g.par[:e] // any e parity packets do
	// Syndromes, in place in the parity buffers.
	for _, pe := range par {
		sy := g.bufs[pe.buf][:s]
		row := d.c.rows[pe.h]
		for i, b := range g.orig {
			if b >= 0 && row[i] != 0 {
				ll.GalMulSliceXor(row[i], g.bufs[b][:s], sy)
			}
		}
	}
	// A = P[H][M], inverted.
	a := d.a[:e*e]
	for r, pe := range par {
		for c, j := range d.miss {
			a[r*e+c] = d.c.rows[pe.h][j]
		}
	}
	if !gfInvert(a, e, d.w) {
		return dst, ErrCorrupt // cannot happen for distinct parity rows
	}
	for c, j := range d.miss {
		out := d.out[c][:s]
		for r, pe := range par {
			if r == 0 {
				ll.GalMulSlice(a[c*e+r], g.bufs[pe.buf][:s], out)
			} else {
				ll.GalMulSliceXor(a[c*e+r], g.bufs[pe.buf][:s], out)
			}
		}
		n := l
		if tr > 0 {
			n = int(binary.LittleEndian.Uint16(out[l:]))
			if n > l {
				return dst, ErrCorrupt
			}
		}
		for _, z := range out[n:l] {
			if z != 0 {
				return dst, ErrCorrupt // padding must rebuild as zeros
			}
		}
		r := Recovered{Seq: g.tg | uint32(j)}
		r.TSDU = out[:n:n]
		if g.frag {
			r.Fragment = getFragment(out[l+tr:])
			r.HasFragment = r.Fragment != (Fragment{})
		}
		dst = append(dst, r)
	}
	return dst, nil
}
