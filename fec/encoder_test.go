package fec

import (
	"errors"
	"math/rand/v2"
	"testing"
)

// TestEncoderMatchesOracle: progressive encoding gives the parity of the
// §8.8 oracle, and of Code.Parity, group after group with the same Encoder.
func TestEncoderMatchesOracle(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, k := range []int{2, 4, 8, 16, 32, 128} {
		c := mustCode(t, k)
		rows := min(c.MaxParity(), 4)
		const maxTSDU = 300
		e, err := NewEncoder(c, maxTSDU, rows)
		if err != nil {
			t.Fatal(err)
		}
		if e.Rows() != rows || e.Code() != c {
			t.Fatal("Rows/Code")
		}
		buf := make([]byte, 0, maxTSDU+2)
		tg := uint32(0)
		// Cycle the profiles so a group follows one with other lengths:
		// stale parity bytes would show.
		for round := range 3 * len(profiles) {
			p := profiles[(round*3)%len(profiles)]
			g := makeGroup(rng, k, maxTSDU, p)
			if round == 2 {
				g = makeGroup(rng, k, maxTSDU/3, mixedLen) // shorter than before
			}
			for i, o := range g {
				if i > 0 && e.Complete() {
					t.Fatal("complete too early")
				}
				if err := e.Add(tg+uint32(i), o); err != nil {
					t.Fatal(err)
				}
			}
			if !e.Complete() || e.Group() != tg || e.Pending() != 0 {
				t.Fatalf("after %d Adds: complete %v group %d pending %d", k, e.Complete(), e.Group(), e.Pending())
			}
			want := oracleParity(t, c, tg, g, rows)
			for h := range rows {
				got, err := e.Parity(buf, h)
				if err != nil {
					t.Fatal(err)
				}
				if !sameParity(got, want[h]) {
					t.Fatalf("k=%d round %d (%v) h=%d: %v, want %v", k, round, p, h, got, want[h])
				}
				if cap(buf) >= len(got.Payload) && &got.Payload[:1][0] != &buf[:1][0] {
					t.Fatal("Parity did not reuse buf")
				}
				od, err := c.Parity(nil, tg, h, g)
				if err != nil || !sameParity(od, got) {
					t.Fatalf("Code.Parity = %v, %v; Encoder %v", od, err, got)
				}
			}
			tg += uint32(k)
		}
	}
}

func TestEncoderSequence(t *testing.T) {
	c := mustCode(t, 4)
	e, _ := NewEncoder(c, 10, 1)
	o := Original{TSDU: []byte{1, 2, 3}}
	step := func(sqn uint32, want error) {
		t.Helper()
		if err := e.Add(sqn, o); !errors.Is(err, want) {
			t.Fatalf("Add(%d) = %v, want %v", sqn, err, want)
		}
	}
	// A sender that starts mid-group: not covered until the boundary.
	step(6, ErrSequence)
	step(7, ErrSequence)
	if e.Pending() != 0 || e.Complete() {
		t.Fatal("no group should be in progress")
	}
	step(8, nil)
	if e.Pending() != 3 || e.Group() != 8 {
		t.Fatalf("pending %d group %d", e.Pending(), e.Group())
	}
	step(9, nil)
	if _, err := e.Parity(nil, 0); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("Parity of an incomplete group: %v", err)
	}
	step(11, ErrSequence) // 10 skipped: group abandoned
	step(12, nil)         // next boundary
	step(13, nil)
	step(13, ErrSequence) // a repeat abandons the group
	step(14, ErrSequence)
	step(15, ErrSequence)
	step(16, nil)
	step(17, nil)
	step(18, nil)
	step(19, nil)
	if !e.Complete() {
		t.Fatal("group 16 complete")
	}
	step(20, nil) // the next group starts by itself
	if e.Group() != 20 || e.Pending() != 3 {
		t.Fatal("group 20")
	}
	step(0x10, nil) // a boundary restarts, discarding the unfinished group
	if e.Group() != 0x10 {
		t.Fatal("restart")
	}
	// Wrap-around of the 32-bit sequence space.
	for s := uint32(0xfffffffc); s != 0; s++ {
		step(s, nil)
	}
	if !e.Complete() || e.Group() != 0xfffffffc {
		t.Fatal("wrap group")
	}
	if p, _ := e.Parity(nil, 0); p.Seq != 0xfffffffc {
		t.Fatalf("parity seq %#x", p.Seq)
	}
}

func TestEncoderErrors(t *testing.T) {
	c := mustCode(t, 4)
	if _, err := NewEncoder(c, -1, 1); !errors.Is(err, ErrMaxTSDU) {
		t.Error(err)
	}
	if _, err := NewEncoder(c, MaxTSDU+1, 1); !errors.Is(err, ErrMaxTSDU) {
		t.Error(err)
	}
	if _, err := NewEncoder(c, 10, 5); !errors.Is(err, ErrParityIndex) {
		t.Error(err)
	}
	e, _ := NewEncoder(c, 10, 2)
	if err := e.Add(0, Original{TSDU: make([]byte, 11)}); !errors.Is(err, ErrTooLong) {
		t.Error(err)
	}
	if err := e.Add(0, Original{HasFragment: true}); !errors.Is(err, ErrFragment) {
		t.Error(err)
	}
	for i := range 4 {
		if err := e.Add(uint32(i), Original{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range []int{-1, 2, 251} {
		if _, err := e.Parity(nil, h); !errors.Is(err, ErrParityIndex) {
			t.Errorf("Parity(%d) = %v", h, err)
		}
	}
	// No rows: nothing to give, and no reedsolomon encoder needed.
	e0, err := NewEncoder(c, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if err := e0.Add(uint32(i), Original{TSDU: []byte{1}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e0.Parity(nil, 0); !errors.Is(err, ErrParityIndex) {
		t.Error(err)
	}
}

// TestEncoderPadding: the flush a sender does at a pause or close. It
// pads the unfinished group with Pending() empty originals; receivers
// rebuild lost originals of the group, padding included, exactly.
func TestEncoderPadding(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	c := mustCode(t, 8)
	const maxTSDU = 64
	e, _ := NewEncoder(c, maxTSDU, 3)
	g := makeGroup(rng, 8, maxTSDU, mixedLen)
	tg := uint32(800)
	for i := range 3 {
		if err := e.Add(tg+uint32(i), g[i]); err != nil {
			t.Fatal(err)
		}
	}
	n := e.Pending()
	if n != 5 {
		t.Fatalf("Pending = %d", n)
	}
	for i := 3; i < 8; i++ {
		g[i] = Original{TSDU: []byte{}} // the padding ODATA
		if err := e.Add(tg+uint32(i), g[i]); err != nil {
			t.Fatal(err)
		}
	}
	if !e.Complete() {
		t.Fatal("not complete after padding")
	}
	ps := make([]Parity, 3)
	for h := range ps {
		ps[h], _ = e.Parity(nil, h)
	}
	// Lose one real original and two padding packets.
	d := mustDecoder(t, c, maxTSDU, 4)
	lost := map[packet]bool{{i: 1}: true, {i: 4}: true, {i: 7}: true}
	deliver(t, d, tg, g, ps, allPackets(8, 3), func(p packet) bool { return lost[p] })
}

func TestEncoderAllocs(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, tc := range []struct{ k, tsdu int }{{16, 1400}, {128, 1400}, {16, 9000}} {
		k := tc.k
		c := mustCode(t, k)
		e, _ := NewEncoder(c, tc.tsdu, 4)
		g := makeGroup(rng, k, tc.tsdu, fragments)
		buf := make([]byte, 0, tc.tsdu+2)
		tg := uint32(0)
		run := func() {
			for i, o := range g {
				if err := e.Add(tg+uint32(i), o); err != nil {
					t.Fatal(err)
				}
			}
			for h := range e.Rows() {
				if _, err := e.Parity(buf, h); err != nil {
					t.Fatal(err)
				}
			}
			tg += uint32(k)
		}
		run()
		if a := testing.AllocsPerRun(20, run); a != 0 {
			t.Errorf("k=%d, %d bytes: %v allocations per group (%d Adds, 4 Parity)", k, tc.tsdu, a, k)
		}
		var ps []Original = g
		od := func() {
			if _, err := c.Parity(buf, 0, 3, ps); err != nil {
				t.Fatal(err)
			}
		}
		if a := testing.AllocsPerRun(20, od); a != 0 {
			t.Errorf("k=%d: Code.Parity: %v allocations", k, a)
		}
	}
}
