package fec

import (
	"encoding/binary"
	"errors"
	"math/bits"
	"math/rand/v2"
	"testing"
)

// FuzzDecoder drives a small Decoder with arbitrary packets: originals and
// parity with any sequence number, length, flags and bytes, with Need and
// Reset calls mixed in. It must never panic, return only known errors, and
// return only well-formed originals of the group of the packet just added.
func FuzzDecoder(f *testing.F) {
	// Seeds: a real group with its parity, and the same with losses.
	rng := rand.New(rand.NewPCG(27, 28))
	c := mustCode(f, 4)
	g := makeGroup(rng, 4, 20, fragments)
	ps := encodeGroup(f, c, 20, 8, g, 2)
	var seed []byte
	for i, o := range g {
		if i == 1 {
			continue
		}
		seed = appendOp(seed, false, false, o.HasFragment, 8+uint32(i), o.TSDU, o.Fragment)
	}
	for _, p := range ps {
		seed = appendOp(seed, true, p.VarPktLen, p.HasFragment, p.Seq, p.Payload, p.Fragment)
	}
	f.Add(seed)
	f.Add(seed[:len(seed)/2])
	f.Add([]byte{1, 0, 0, 0, 5, 3, 1, 2, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		const maxTSDU = 24
		d := mustDecoder(t, c, maxTSDU, 2)
		var rec []Recovered
		total := 0
		for len(data) >= 6 {
			flags := data[0]
			sqn := binary.BigEndian.Uint32(data[1:5])
			n := int(data[5]) % (maxTSDU + 8)
			data = data[6:]
			payload := make([]byte, n)
			data = data[copy(payload, data):]
			var frag Fragment
			if flags&4 != 0 && len(data) >= 12 {
				frag = getFragment(data)
				data = data[12:]
			}
			switch flags & 0x18 {
			case 0x18:
				d.Reset()
			case 0x08:
				if n := d.Need(sqn); n < 0 || n > c.K() {
					t.Fatalf("Need(%d) = %d", sqn, n)
				}
			}
			var err error
			rec = rec[:0]
			if flags&1 != 0 {
				rec, err = d.AddParity(rec, Parity{Seq: sqn, Payload: payload, VarPktLen: flags&2 != 0,
					HasFragment: flags&4 != 0, Fragment: frag})
			} else {
				rec, err = d.AddOriginal(rec, sqn, Original{TSDU: payload, HasFragment: flags&4 != 0, Fragment: frag})
			}
			if err != nil && !knownError(err) {
				t.Fatalf("unknown error %v", err)
			}
			if len(rec) > c.K() {
				t.Fatalf("%d originals from one packet", len(rec))
			}
			for _, r := range rec {
				if c.Group(r.Seq) != c.Group(sqn) || len(r.TSDU) > maxTSDU ||
					r.HasFragment && r.Fragment == (Fragment{}) {
					t.Fatalf("bad rebuilt packet %+v after seq %d", r, sqn)
				}
			}
			total += len(rec)
		}
		if st := d.Stats(); st.Recovered != uint64(total) {
			t.Fatalf("stats %+v, %d returned", st, total)
		}
	})
}

func appendOp(b []byte, parity, vl, hasFrag bool, seq uint32, payload []byte, f Fragment) []byte {
	var flags byte
	if parity {
		flags |= 1
	}
	if vl {
		flags |= 2
	}
	if hasFrag {
		flags |= 4
	}
	b = append(b, flags)
	b = binary.BigEndian.AppendUint32(b, seq)
	b = append(b, byte(len(payload)))
	b = append(b, payload...)
	if hasFrag {
		var fb [12]byte
		putFragment(fb[:], f)
		b = append(b, fb[:]...)
	}
	return b
}

func knownError(err error) bool {
	for _, e := range []error{ErrParityIndex, ErrTooLong, ErrLength, ErrFragment, ErrMismatch, ErrCorrupt} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// FuzzRoundTrip: any group (k up to 16, arbitrary lengths and fragments)
// encoded with m parity packets and any loss of at most m packets, in any
// order, comes back exactly.
func FuzzRoundTrip(f *testing.F) {
	f.Add(uint8(3), uint8(2), uint32(0b101), uint64(1), uint32(0x10))
	f.Add(uint8(0), uint8(1), uint32(0b11), uint64(2), uint32(0xfffffffe))
	f.Add(uint8(2), uint8(3), uint32(0b1000_0001_0001), uint64(3), uint32(77))
	f.Fuzz(func(t *testing.T, kb, mb uint8, lostMask uint32, seed uint64, base uint32) {
		k := 2 << (kb % 4) // 2..16
		c := mustCode(t, k)
		m := 1 + int(mb)%min(4, c.MaxParity())
		lostMask &= 1<<(k+m) - 1
		for bits.OnesCount32(lostMask) > m {
			lostMask &= lostMask - 1 // drop the lowest loss
		}
		rng := rand.New(rand.NewPCG(seed, uint64(lostMask)))
		const maxTSDU = 64
		g := makeGroup(rng, k, maxTSDU, profiles[seed%uint64(len(profiles))])
		tg := c.Group(base)
		ps := encodeGroup(t, c, maxTSDU, tg, g, m)
		order := allPackets(k, m)
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		d := mustDecoder(t, c, maxTSDU, 1)
		deliver(t, d, tg, g, ps, order, func(pk packet) bool {
			b := pk.i
			if pk.parity {
				b += k
			}
			return lostMask&(1<<b) != 0
		})
	})
}
