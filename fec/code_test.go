package fec

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/relmcast/relmcast/internal/wire"
)

// Fragment converts to and from the codec's, field for field.
var (
	_ = Fragment(wire.Fragment{})
	_ = wire.Fragment(Fragment{})
)

func TestNewCode(t *testing.T) {
	for _, k := range []int{-2, 0, 1, 3, 6, 12, 129, 256} {
		if _, err := NewCode(k); !errors.Is(err, ErrGroupSize) {
			t.Errorf("NewCode(%d) = %v, want ErrGroupSize", k, err)
		}
	}
	for k, want := range map[int]int{2: 2, 4: 4, 16: 16, 64: 64, 128: 127} {
		c := mustCode(t, k)
		if c.K() != k || c.MaxParity() != want {
			t.Errorf("k=%d: K %d MaxParity %d, want %d", k, c.K(), c.MaxParity(), want)
		}
	}
	c := mustCode(t, 16)
	if c.Group(0x12345678) != 0x12345670 || c.Index(0x1234567b) != 11 || c.Group(15) != 0 {
		t.Error("Group/Index")
	}
	if _, err := c.Row(16); !errors.Is(err, ErrParityIndex) {
		t.Error("Row(16) of k=16")
	}
}

// TestCodeParityMatchesOracle: the on-demand path equals the §8.8 mapping
// (reedsolomon Encode with OpenPGM's rows over hand-built shards) for every
// group size, every shape and (for small k) every row.
func TestCodeParityMatchesOracle(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for k := MinGroupSize; k <= MaxGroupSize; k *= 2 {
		c := mustCode(t, k)
		rows := c.MaxParity()
		if k > 16 {
			rows = 4
		}
		for _, p := range profiles {
			t.Run(fmt.Sprintf("k=%d/%v", k, p), func(t *testing.T) {
				const maxTSDU = 100
				tg := uint32(k) * rng.Uint32N(1000)
				g := makeGroup(rng, k, maxTSDU, p)
				want := oracleParity(t, c, tg, g, rows)
				buf := make([]byte, 0, maxTSDU+2)
				for h := range rows {
					got, err := c.Parity(buf, tg, h, g)
					if err != nil {
						t.Fatal(err)
					}
					if !sameParity(got, want[h]) {
						t.Fatalf("h=%d: %v, want %v", h, got, want[h])
					}
				}
			})
		}
	}
}

func TestCodeParityErrors(t *testing.T) {
	c := mustCode(t, 4)
	g := makeGroup(rand.New(rand.NewPCG(5, 6)), 4, 10, mixedLen)
	for _, tc := range []struct {
		name string
		tg   uint32
		h    int
		g    []Original
		err  error
	}{
		{"h<0", 0, -1, g, ErrParityIndex},
		{"h=k", 0, 4, g, ErrParityIndex},
		{"h=255-k", 0, 251, g, ErrParityIndex},
		{"short group", 0, 0, g[:3], ErrGroup},
		{"unaligned", 2, 0, g, ErrGroup},
		{"too long", 0, 0, []Original{{}, {}, {TSDU: make([]byte, MaxTSDU+1)}, {}}, ErrTooLong},
		{"zero fragment", 0, 0, []Original{{}, {HasFragment: true}, {}, {}}, ErrFragment},
	} {
		if _, err := c.Parity(nil, tc.tg, tc.h, tc.g); !errors.Is(err, tc.err) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.err)
		}
	}
}
