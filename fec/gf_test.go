package fec

import (
	"bytes"
	"encoding/hex"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/klauspost/reedsolomon"
)

// TestParityMatrixVectors reproduces the generator rows OpenPGM's own
// pgm_rs_create prints (research §8.7).
func TestParityMatrixVectors(t *testing.T) {
	for _, tc := range []struct {
		k    int
		rows []string
	}{
		{2, []string{"03 02", "05 04"}},
		{4, []string{"77 40 38 0e", "c7 a7 0d 6c"}},
		{8, []string{"89 18 d0 7d 92 a4 f5 fe", "36 f8 d0 ce 25 19 fb 16"}},
		{16, []string{"c5 3b 1f 2d 4f aa 83 c2 61 69 77 a6 e2 5f 37 3a"}},
	} {
		c := mustCode(t, tc.k)
		for h, want := range tc.rows {
			w, _ := hex.DecodeString(strings.ReplaceAll(want, " ", ""))
			got, err := c.Row(h)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, w) {
				t.Errorf("k=%d row k+%d = % x, want % x", tc.k, h, got, w)
			}
		}
	}
}

// TestParityMatrixDefinition checks every row of every group size against
// its definition without inverting anything: row_h · V_top = v(α^(k+h-1)).
func TestParityMatrixDefinition(t *testing.T) {
	for k := MinGroupSize; k <= MaxGroupSize; k *= 2 {
		c := mustCode(t, k)
		if got, want := len(c.rows), min(k, 255-k); got != want {
			t.Fatalf("k=%d: %d rows, want %d", k, got, want)
		}
		point := func(r int) byte { // evaluation point of generator row r
			if r == 0 {
				return 0
			}
			return gfExp[r-1]
		}
		for h, row := range c.rows {
			for col := range k {
				var s byte
				for i := range k {
					s ^= gfMul(row[i], gfPow(point(i), col))
				}
				if want := gfPow(point(k+h), col); s != want {
					t.Fatalf("k=%d h=%d column %d: %#x, want %#x", k, h, col, s, want)
				}
			}
		}
	}
}

// TestSameFieldAsKlauspost: klauspost's default matrix uses the points 0,
// 1, 2, … which agree with OpenPGM's for k=2, parity 0 only (§8.8).
func TestSameFieldAsKlauspost(t *testing.T) {
	for a := range 256 {
		for b := range 256 {
			var ll reedsolomon.LowLevel
			out := []byte{0}
			ll.GalMulSlice(byte(a), []byte{byte(b)}, out)
			if got := gfMul(byte(a), byte(b)); got != out[0] {
				t.Fatalf("%#x·%#x = %#x, klauspost %#x", a, b, got, out[0])
			}
		}
	}
	rs, _ := reedsolomon.New(2, 1)
	sh := [][]byte{{0x11, 0x22}, {0x33, 0x44}, make([]byte, 2)}
	if err := rs.Encode(sh); err != nil {
		t.Fatal(err)
	}
	c := mustCode(t, 2)
	p, err := c.Parity(nil, 0, 0, []Original{{TSDU: sh[0]}, {TSDU: sh[1]}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p.Payload, sh[2]) {
		t.Errorf("k=2 h=0: % x, klauspost default % x", p.Payload, sh[2])
	}
}

func TestGFInvert(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for n := 1; n <= 12; n++ {
		for range 50 {
			a := make([]byte, n*n)
			for i := range a {
				a[i] = byte(rng.Uint32())
			}
			inv := bytes.Clone(a)
			if !gfInvert(inv, n, make([]byte, n*n)) {
				continue // singular: checked below
			}
			for r := range n {
				for c := range n {
					var s byte
					for i := range n {
						s ^= gfMul(a[r*n+i], inv[i*n+c])
					}
					if want := byte(0); r == c && s != 1 || r != c && s != want {
						t.Fatalf("n=%d: A·A^-1 [%d][%d] = %#x", n, r, c, s)
					}
				}
			}
		}
	}
	// Two equal rows: singular.
	a := []byte{1, 2, 3, 1, 2, 3, 4, 5, 6}
	if gfInvert(a, 3, make([]byte, 9)) {
		t.Error("singular matrix inverted")
	}
	if gfInv(1) != 1 || gfMul(2, gfInv(2)) != 1 || gfPow(0, 0) != 1 || gfPow(0, 3) != 0 || gfPow(2, 8) != 0x1d {
		t.Error("field basics")
	}
}
