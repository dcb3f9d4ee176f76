package fec

import (
	"bytes"
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"testing"
)

// TestDecoderExhaustive: for k ≤ 8 and up to 4 parity packets, every
// pattern of up to m lost packets (originals and parity alike) among the
// k+m of a group rebuilds the lost originals byte-identical, whatever the
// arrival order, for equal, mixed (zero and max length included),
// fragmented and all-empty groups.
func TestDecoderExhaustive(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for _, k := range []int{2, 4, 8} {
		c := mustCode(t, k)
		for m := 1; m <= min(4, c.MaxParity()); m++ {
			for _, p := range profiles {
				t.Run(fmt.Sprintf("k=%d/m=%d/%v", k, m, p), func(t *testing.T) {
					const maxTSDU = 48
					d := mustDecoder(t, c, maxTSDU, 4)
					tg := rng.Uint32() &^ uint32(k-1)
					cases, rebuilt := 0, 0
					for mask := uint32(0); mask < 1<<(k+m); mask++ {
						if bits.OnesCount32(mask) > m {
							continue
						}
						g := makeGroup(rng, k, maxTSDU, p)
						ps := encodeGroup(t, c, maxTSDU, tg, g, m)
						order := allPackets(k, m)
						rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
						lost := func(pk packet) bool {
							bit := pk.i
							if pk.parity {
								bit += k
							}
							return mask&(1<<bit) != 0
						}
						rebuilt += deliver(t, d, tg, g, ps, order, lost)
						cases++
						tg += uint32(k)
					}
					st := d.Stats()
					if st.Recovered != uint64(rebuilt) || st.Rejected != 0 || st.Evicted != 0 {
						t.Fatalf("%d patterns, %d rebuilt, stats %+v", cases, rebuilt, st)
					}
				})
			}
		}
	}
}

// TestDecoderSampled: random erasure patterns for k = 16..128, up to 16
// parity packets (and once all of them), 1400-byte packets.
func TestDecoderSampled(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	iters := 40
	if raceEnabled || testing.Short() {
		iters = 8
	}
	for _, k := range []int{16, 32, 64, 128} {
		c := mustCode(t, k)
		const maxTSDU = 1400
		d := mustDecoder(t, c, maxTSDU, 8)
		tg := rng.Uint32() &^ uint32(k-1)
		for it := range iters {
			m := 1 + rng.IntN(min(16, c.MaxParity()))
			if it == 0 {
				m = c.MaxParity()
			}
			p := profiles[rng.IntN(len(profiles))]
			g := makeGroup(rng, k, maxTSDU, p)
			ps := encodeGroup(t, c, maxTSDU, tg, g, m)
			// Lose exactly m packets, mostly originals.
			lostSet := make(map[packet]bool)
			for len(lostSet) < m {
				if rng.IntN(4) == 0 {
					lostSet[packet{parity: true, i: rng.IntN(m)}] = true
				} else {
					lostSet[packet{i: rng.IntN(k)}] = true
				}
			}
			order := allPackets(k, m)
			rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
			deliver(t, d, tg, g, ps, order, func(pk packet) bool { return lostSet[pk] })
			tg += uint32(k)
		}
	}
}

// TestDecoderParityIndexFromSeq: parity rows come from the sequence
// number. Four parity packets are sent, h=0 and h=2 are lost, the other two
// arrive in reverse order; a decoder assigning rows by arrival (OpenPGM,
// research §8.5 item 6) would use rows 0 and 1 and rebuild garbage.
func TestDecoderParityIndexFromSeq(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	c := mustCode(t, 8)
	const maxTSDU = 200
	g := makeGroup(rng, 8, maxTSDU, mixedLen)
	tg := uint32(0x4000)
	ps := encodeGroup(t, c, maxTSDU, tg, g, 4)
	d := mustDecoder(t, c, maxTSDU, 4)
	order := []packet{{i: 0}, {i: 2}, {i: 3}, {i: 4}, {i: 6}, {i: 7}, {parity: true, i: 3}, {parity: true, i: 1}}
	if n := deliver(t, d, tg, g, ps, order, func(pk packet) bool { return !pk.parity && (pk.i == 1 || pk.i == 5) }); n != 2 {
		t.Fatalf("rebuilt %d", n)
	}

	// Negative control: relabel h=3 and h=1 as h=0 and h=1 (arrival
	// order); the result must not be the originals.
	d2 := mustDecoder(t, c, maxTSDU, 4)
	for _, i := range []int{0, 2, 3, 4, 6, 7} {
		if _, err := d2.AddOriginal(nil, tg+uint32(i), g[i]); err != nil {
			t.Fatal(err)
		}
	}
	p0 := ps[3]
	p0.Seq = tg | 0
	rec, _ := d2.AddParity(nil, p0)
	rec, err := d2.AddParity(rec, ps[1])
	if err == nil {
		for _, r := range rec {
			if sameOriginal(r.Original, g[c.Index(r.Seq)]) {
				t.Fatalf("wrongly labelled parity rebuilt original %d", c.Index(r.Seq))
			}
		}
	}
}

// TestDecoderParityFirst: parity that overtakes the originals is kept; the
// original that makes k packets triggers the rebuild.
func TestDecoderParityFirst(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 20))
	c := mustCode(t, 4)
	g := makeGroup(rng, 4, 30, fragments)
	ps := encodeGroup(t, c, 30, 0, g, 2)
	d := mustDecoder(t, c, 30, 2)
	order := []packet{{parity: true, i: 1}, {parity: true, i: 0}, {i: 3}, {i: 0}}
	if n := deliver(t, d, 0, g, ps, order, func(pk packet) bool { return !pk.parity && (pk.i == 1 || pk.i == 2) }); n != 2 {
		t.Fatal(n)
	}
	// The group is finished: late packets are redundant.
	before := d.Stats().Redundant
	if rec, err := d.AddOriginal(nil, 1, g[1]); err != nil || len(rec) != 0 {
		t.Fatal(rec, err)
	}
	if d.Stats().Redundant != before+1 {
		t.Fatal("late original not counted")
	}
	if d.Need(2) != 0 {
		t.Fatal("Need of a finished group")
	}
}

func TestDecoderBadInput(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	c := mustCode(t, 4)
	const maxTSDU = 40
	fresh := func() *Decoder { return mustDecoder(t, c, maxTSDU, 4) }
	g := makeGroup(rng, 4, maxTSDU, mixedLen) // lengths differ: VarPktLen
	ps := encodeGroup(t, c, maxTSDU, 0, g, 3)
	eq := makeGroup(rng, 4, 20, equalLen) // 20 bytes each: no trailer
	eqp := encodeGroup(t, c, maxTSDU, 0, eq, 2)
	l := len(ps[0].Payload) - 2 // L

	expect := func(name string, err, want error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", name, err, want)
		}
	}
	t.Run("parity lengths differ", func(t *testing.T) {
		d := fresh()
		_, err := d.AddParity(nil, ps[0])
		expect("first", err, nil)
		p := ps[1]
		p.Payload = p.Payload[:len(p.Payload)-1]
		_, err = d.AddParity(nil, p)
		expect("second", err, ErrMismatch)
		// The group is given up: nothing comes out of it any more.
		for i := range 3 {
			rec, err := d.AddOriginal(nil, uint32(i), g[i])
			if err != nil || len(rec) != 0 {
				t.Fatal(rec, err)
			}
		}
		if d.Need(0) != 0 {
			t.Error("Need of a failed group")
		}
	})
	t.Run("parity flags differ", func(t *testing.T) {
		d := mustDecoder(t, c, maxTSDU+2, 4)
		d.AddParity(nil, ps[0])
		p := ps[1]
		p.VarPktLen = false
		_, err := d.AddParity(nil, p)
		expect("var", err, ErrMismatch)
	})
	t.Run("original longer than L", func(t *testing.T) {
		d := fresh()
		d.AddParity(nil, eqp[0])
		_, err := d.AddOriginal(nil, 1, Original{TSDU: make([]byte, 21)})
		expect("after parity", err, ErrMismatch)
		d = fresh()
		d.AddOriginal(nil, 1, Original{TSDU: make([]byte, 21)})
		_, err = d.AddParity(nil, eqp[0])
		expect("before parity", err, ErrMismatch)
	})
	t.Run("original shorter without trailer", func(t *testing.T) {
		d := fresh()
		d.AddParity(nil, eqp[1])
		_, err := d.AddOriginal(nil, 2, Original{TSDU: make([]byte, 19)})
		expect("short", err, ErrMismatch)
	})
	t.Run("fragment not covered", func(t *testing.T) {
		d := fresh()
		d.AddParity(nil, eqp[0])
		_, err := d.AddOriginal(nil, 2, Original{TSDU: make([]byte, 20), HasFragment: true, Fragment: Fragment{Length: 99}})
		expect("frag", err, ErrMismatch)
	})
	t.Run("malformed", func(t *testing.T) {
		d := fresh()
		_, err := d.AddParity(nil, Parity{Seq: 1, Payload: []byte{7}, VarPktLen: true})
		expect("var trailer missing", err, ErrLength)
		_, err = d.AddParity(nil, Parity{Seq: 1, Payload: make([]byte, maxTSDU+1)})
		expect("parity too long", err, ErrTooLong)
		_, err = d.AddParity(nil, Parity{Seq: 1, Payload: make([]byte, maxTSDU+3), VarPktLen: true})
		expect("var parity too long", err, ErrTooLong)
		_, err = d.AddOriginal(nil, 1, Original{TSDU: make([]byte, maxTSDU+1)})
		expect("original too long", err, ErrTooLong)
		_, err = d.AddOriginal(nil, 1, Original{HasFragment: true})
		expect("zero fragment", err, ErrFragment)
		if st := d.Stats(); st.Rejected != 5 {
			t.Errorf("Rejected = %d", st.Rejected)
		}
		_, err = d.AddParity(nil, Parity{Seq: 1, Payload: make([]byte, maxTSDU+2), VarPktLen: true})
		expect("var parity of max length", err, nil)
	})
	t.Run("h >= 255-k", func(t *testing.T) {
		c128 := mustCode(t, 128)
		d := mustDecoder(t, c128, maxTSDU, 2)
		_, err := d.AddParity(nil, Parity{Seq: 128*5 + 127, Payload: []byte{1}})
		expect("h=127", err, ErrParityIndex)
		_, err = d.AddParity(nil, Parity{Seq: 128*5 + 126, Payload: []byte{1}})
		expect("h=126", err, nil)
		if _, err := NewDecoder(c, DecoderConfig{MaxTSDU: MaxTSDU + 1}); !errors.Is(err, ErrMaxTSDU) {
			t.Error(err)
		}
	})
	t.Run("trailer claims length > L", func(t *testing.T) {
		// Lose original 1 and tamper with parity 0's trailer so that the
		// rebuilt trailer reads 0xffff: d_1 changes by δ when p_0 changes
		// by P[0][1]·δ.
		j := 1
		row, _ := c.Row(0)
		p := ps[0]
		p.Payload = bytes.Clone(p.Payload)
		n := len(g[j].TSDU)
		delta := [2]byte{byte(n) ^ 0xff, byte(n>>8) ^ 0xff}
		p.Payload[l] ^= gfMul(row[j], delta[0])
		p.Payload[l+1] ^= gfMul(row[j], delta[1])
		d := fresh()
		for _, i := range []int{0, 2, 3} {
			d.AddOriginal(nil, uint32(i), g[i])
		}
		rec, err := d.AddParity(nil, p)
		expect("trailer", err, ErrCorrupt)
		if len(rec) != 0 {
			t.Error("corrupt group returned packets")
		}
	})
	t.Run("padding not zero", func(t *testing.T) {
		// The shortest original is lost; a byte of its padding rebuilds
		// as non-zero.
		j := 0
		for i := range g {
			if len(g[i].TSDU) < len(g[j].TSDU) {
				j = i
			}
		}
		row, _ := c.Row(2)
		p := ps[2]
		p.Payload = bytes.Clone(p.Payload)
		p.Payload[l-1] ^= gfMul(row[j], 0x5a)
		d := fresh()
		for i := range 4 {
			if i != j {
				d.AddOriginal(nil, uint32(i), g[i])
			}
		}
		_, err := d.AddParity(nil, p)
		expect("padding", err, ErrCorrupt)
	})
}

// TestDecoderWindow: the Decoder holds the newest Groups groups; packets
// of older ones are ignored and counted, their slots reused. Sequence
// numbers wrap.
func TestDecoderWindow(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	c := mustCode(t, 4)
	const maxTSDU = 16
	d := mustDecoder(t, c, maxTSDU, 3) // rounded up to 4
	if len(d.groups) != 4 {
		t.Fatalf("%d slots", len(d.groups))
	}
	start := uint32(0xfffffff0) // four groups before the wrap
	groups := make([][]Original, 10)
	parity := make([][]Parity, 10)
	for n := range groups {
		tg := start + uint32(4*n)
		groups[n] = makeGroup(rng, 4, maxTSDU, mixedLen)
		parity[n] = encodeGroup(t, c, maxTSDU, tg, groups[n], 2)
		// Originals 1 and 2 of every group are late: only 0 and 3 now.
		for _, i := range []int{0, 3} {
			if _, err := d.AddOriginal(nil, tg+uint32(i), groups[n][i]); err != nil {
				t.Fatal(err)
			}
		}
		if got := d.Need(tg); got != 2 {
			t.Fatalf("group %d: Need %d", n, got)
		}
	}
	top := start + 4*9
	if d.Need(top+4) != 4 {
		t.Error("Need of a group not seen yet")
	}
	// Groups 6..9 are held, 0..5 are behind the window.
	if d.Need(start+4*5) != 0 {
		t.Error("Need of a stale group")
	}
	rec, err := d.AddParity(nil, parity[5][0])
	if err != nil || len(rec) != 0 || d.Stats().Stale != 1 {
		t.Fatalf("stale parity: %v %v %+v", rec, err, d.Stats())
	}
	if ev := d.Stats().Evicted; ev != 6 {
		t.Errorf("Evicted = %d, want 6", ev)
	}
	for n := 6; n < 10; n++ {
		tg := start + uint32(4*n)
		rec, err := d.AddParity(nil, parity[n][1])
		if err != nil || len(rec) != 0 {
			t.Fatal(rec, err)
		}
		rec, err = d.AddParity(nil, parity[n][0])
		if err != nil || len(rec) != 2 {
			t.Fatalf("group %d: %d rebuilt, %v", n, len(rec), err)
		}
		for _, r := range rec {
			if i := int(r.Seq - tg); !sameOriginal(r.Original, groups[n][i]) {
				t.Fatalf("group %d original %d", n, i)
			}
		}
	}
	// A much newer group moves the window past everything.
	far := top + 4*1000
	d.AddOriginal(nil, far, Original{TSDU: []byte{1}})
	if _, err := d.AddParity(nil, parity[9][0]); err != nil || d.Stats().Stale != 2 {
		t.Fatal("old group after a jump", err, d.Stats())
	}
	d.Reset()
	if d.Need(top) != 4 {
		t.Error("Reset")
	}
	// After Reset any group is accepted again.
	if _, err := d.AddParity(nil, parity[9][0]); err != nil || d.Stats().Stale != 2 {
		t.Fatal("after Reset", err)
	}
}

// TestDecoderAllocs: once warm, a Decoder allocates nothing, neither per
// packet nor per rebuild.
func TestDecoderAllocs(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	for _, k := range []int{16, 128} {
		c := mustCode(t, k)
		const maxTSDU = 1400
		const groups = 8
		d := mustDecoder(t, c, maxTSDU, groups)
		// A ring of prepared groups with their parity, 4 originals lost in
		// each, at varying positions.
		const ring = 2 * groups
		gs := make([][]Original, ring)
		pss := make([][]Parity, ring)
		lost := make([][4]int, ring)
		for n := range ring {
			gs[n] = makeGroup(rng, k, maxTSDU, profiles[n%len(profiles)])
			pss[n] = encodeGroup(t, c, maxTSDU, uint32(n*k), gs[n], 4)
			for j := range lost[n] {
				lost[n][j] = (n + j*3) % k
			}
		}
		rec := make([]Recovered, 0, k)
		tg, n := uint32(0), 0
		packets := 0
		run := func() {
			g, ps := gs[n%ring], pss[n%ring]
			got := 0
			for i := range k {
				if i == lost[n%ring][0] || i == lost[n%ring][1] || i == lost[n%ring][2] || i == lost[n%ring][3] {
					continue
				}
				r, err := d.AddOriginal(rec[:0], tg+uint32(i), g[i])
				if err != nil {
					t.Fatal(err)
				}
				got += len(r)
				packets++
			}
			for h := range 4 {
				p := ps[h]
				p.Seq = tg | uint32(h)
				r, err := d.AddParity(rec[:0], p)
				if err != nil {
					t.Fatal(err)
				}
				got += len(r)
				packets++
			}
			if got != 4 {
				t.Fatalf("rebuilt %d", got)
			}
			tg += uint32(k)
			n++
		}
		for range 2 * groups { // warm every slot
			run()
		}
		packets = 0
		a := testing.AllocsPerRun(50, run)
		if a != 0 {
			t.Errorf("k=%d: %v allocations per group (%d packets, 4 rebuilt)", k, a, k)
		}
	}
}
