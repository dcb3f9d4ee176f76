package fec

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/reedsolomon"
)

// profile says how a test group's TSDU lengths and fragments are drawn.
type profile int

const (
	equalLen  profile = iota // every TSDU maxTSDU long: no trailer
	mixedLen                 // random lengths, always one 0 and one maxTSDU: trailer
	fragments                // mixed lengths, some originals with OPT_FRAGMENT
	allEmpty                 // every TSDU zero-length (a padded group's extreme)
)

func (p profile) String() string {
	return [...]string{"equal", "mixed", "frag", "empty"}[p]
}

var profiles = []profile{equalLen, mixedLen, fragments, allEmpty}

// makeGroup draws k originals of at most maxTSDU bytes.
func makeGroup(rng *rand.Rand, k, maxTSDU int, p profile) []Original {
	g := make([]Original, k)
	for i := range g {
		n := maxTSDU
		switch p {
		case mixedLen, fragments:
			n = rng.IntN(maxTSDU + 1)
		case allEmpty:
			n = 0
		}
		g[i].TSDU = make([]byte, n)
		for j := range g[i].TSDU {
			g[i].TSDU[j] = byte(rng.Uint32())
		}
		if p == fragments && rng.IntN(2) == 0 {
			g[i].HasFragment = true
			g[i].Fragment = Fragment{First: rng.Uint32(), Offset: rng.Uint32(), Length: rng.Uint32() | 1}
		}
	}
	if (p == mixedLen || p == fragments) && k >= 2 {
		// Pin the extremes: a zero-length and a max-length TSDU.
		a := rng.IntN(k)
		b := (a + 1 + rng.IntN(k-1)) % k
		g[a].TSDU = g[a].TSDU[:0]
		g[b].TSDU = make([]byte, maxTSDU)
		for j := range g[b].TSDU {
			g[b].TSDU[j] = byte(rng.Uint32())
		}
	}
	return g
}

// oracleParity computes the parity packets 0..m-1 of a group the way
// research §8.6–§8.8 describe it, independently of the package: build each
// shard by hand (TSDU zero-padded to L, u16 little-endian length when the
// lengths differ, OPT_FRAGMENT fields in network order when any original
// has one) and let reedsolomon.New(k, m, WithCustomMatrix(rows)).Encode do
// the arithmetic.
func oracleParity(t testing.TB, c *Code, tg uint32, g []Original, m int) []Parity {
	t.Helper()
	k := c.K()
	l, minL, frag := 0, len(g[0].TSDU), false
	for _, o := range g {
		l = max(l, len(o.TSDU))
		minL = min(minL, len(o.TSDU))
		frag = frag || o.HasFragment
	}
	vl := minL != l
	size := l
	if vl {
		size += 2
	}
	plen := size
	if frag {
		size += 12
	}
	if size == 0 {
		// klauspost refuses empty shards; an all-empty group's parity is
		// empty too.
		ps := make([]Parity, m)
		for h := range ps {
			ps[h] = Parity{Seq: tg | uint32(h), Payload: []byte{}}
		}
		return ps
	}
	shards := make([][]byte, k+m)
	for i := range shards {
		shards[i] = make([]byte, size)
	}
	for i, o := range g {
		copy(shards[i], o.TSDU)
		if vl {
			binary.LittleEndian.PutUint16(shards[i][l:], uint16(len(o.TSDU)))
		}
		if o.HasFragment {
			f := shards[i][plen:]
			binary.BigEndian.PutUint32(f[0:], o.Fragment.First)
			binary.BigEndian.PutUint32(f[4:], o.Fragment.Offset)
			binary.BigEndian.PutUint32(f[8:], o.Fragment.Length)
		}
	}
	rows := make([][]byte, m)
	for h := range rows {
		rows[h], _ = c.Row(h)
	}
	rs, err := reedsolomon.New(k, m, reedsolomon.WithCustomMatrix(rows))
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.Encode(shards); err != nil {
		t.Fatal(err)
	}
	ps := make([]Parity, m)
	for h := range ps {
		s := shards[k+h]
		ps[h] = Parity{Seq: tg | uint32(h), Payload: s[:plen], VarPktLen: vl, HasFragment: frag}
		if frag {
			ps[h].Fragment = Fragment{
				First:  binary.BigEndian.Uint32(s[plen:]),
				Offset: binary.BigEndian.Uint32(s[plen+4:]),
				Length: binary.BigEndian.Uint32(s[plen+8:]),
			}
		}
	}
	return ps
}

// encodeGroup runs g through an Encoder with m rows and returns copies of
// its parity packets.
func encodeGroup(t testing.TB, c *Code, maxTSDU int, tg uint32, g []Original, m int) []Parity {
	t.Helper()
	e, err := NewEncoder(c, maxTSDU, m)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range g {
		if err := e.Add(tg+uint32(i), o); err != nil {
			t.Fatalf("Add(%d): %v", i, err)
		}
	}
	ps := make([]Parity, m)
	for h := range ps {
		p, err := e.Parity(nil, h)
		if err != nil {
			t.Fatal(err)
		}
		ps[h] = p
	}
	return ps
}

func sameParity(a, b Parity) bool {
	return a.Seq == b.Seq && bytes.Equal(a.Payload, b.Payload) && a.VarPktLen == b.VarPktLen &&
		a.HasFragment == b.HasFragment && a.Fragment == b.Fragment
}

func (p Parity) String() string {
	return fmt.Sprintf("{seq %d, %d bytes % x, var %v, frag %v %+v}", p.Seq, len(p.Payload),
		p.Payload[:min(len(p.Payload), 8)], p.VarPktLen, p.HasFragment, p.Fragment)
}

// sameOriginal compares a rebuilt original with the one sent.
func sameOriginal(a, b Original) bool {
	return bytes.Equal(a.TSDU, b.TSDU) && len(a.TSDU) == len(b.TSDU) &&
		a.HasFragment == b.HasFragment && (!a.HasFragment || a.Fragment == b.Fragment)
}

// packet is one packet of a group in flight: original i or parity h.
type packet struct {
	parity bool
	i      int
}

// deliver feeds the packets of one group that survive (lost reports the
// others) to d in the given order and checks that every lost original
// comes back byte-identical. Originals not lost may come back too, when k
// packets were in before they arrived (they then arrive as redundant), but
// never one already delivered. It returns how many were recovered.
func deliver(t testing.TB, d *Decoder, tg uint32, g []Original, ps []Parity, order []packet, lost func(packet) bool) int {
	t.Helper()
	k := d.Code().K()
	var rec []Recovered
	got := make(map[uint32]Original)
	delivered := make(map[int]bool)
	for _, pk := range order {
		if lost(pk) {
			continue
		}
		if !pk.parity {
			if _, early := got[tg+uint32(pk.i)]; !early {
				delivered[pk.i] = true
			}
		}
		var err error
		rec = rec[:0]
		if pk.parity {
			rec, err = d.AddParity(rec, ps[pk.i])
		} else {
			rec, err = d.AddOriginal(rec, tg+uint32(pk.i), g[pk.i])
		}
		if err != nil {
			t.Fatalf("packet %+v: %v", pk, err)
		}
		for _, r := range rec {
			if _, dup := got[r.Seq]; dup {
				t.Fatalf("seq %d recovered twice", r.Seq)
			}
			o := r.Original
			o.TSDU = bytes.Clone(o.TSDU) // valid only until the next call
			got[r.Seq] = o
		}
	}
	for i := range k {
		r, ok := got[tg+uint32(i)]
		switch {
		case ok && delivered[i]:
			t.Fatalf("original %d recovered after it was delivered", i)
		case !ok && lost(packet{i: i}):
			t.Fatalf("original %d lost and not recovered", i)
		case ok && !sameOriginal(r, g[i]):
			t.Fatalf("original %d: rebuilt %d bytes %+v, sent %d bytes %+v", i,
				len(r.TSDU), r, len(g[i].TSDU), g[i])
		}
	}
	for s := range got {
		if s-tg >= uint32(k) {
			t.Fatalf("recovered seq %d outside the group %d", s, tg)
		}
	}
	return len(got)
}

// allPackets lists a group's k originals and m parity packets.
func allPackets(k, m int) []packet {
	ps := make([]packet, 0, k+m)
	for i := range k {
		ps = append(ps, packet{i: i})
	}
	for h := range m {
		ps = append(ps, packet{parity: true, i: h})
	}
	return ps
}

func mustCode(t testing.TB, k int) *Code {
	t.Helper()
	c, err := NewCode(k)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustDecoder(t testing.TB, c *Code, maxTSDU, groups int) *Decoder {
	t.Helper()
	d, err := NewDecoder(c, DecoderConfig{MaxTSDU: maxTSDU, Groups: groups})
	if err != nil {
		t.Fatal(err)
	}
	return d
}
