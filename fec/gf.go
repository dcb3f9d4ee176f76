package fec

// GF(2^8) arithmetic over x^8 + x^4 + x^3 + x^2 + 1 (0x11D) with generator
// α = 2, the field of OpenPGM (galois_tables.c) and of klauspost/reedsolomon.
// It is used only to build coefficient matrices (the parity rows in NewCode
// and the small erasure systems the Decoder inverts); the bulk byte work is
// done by reedsolomon's SIMD kernels.

const gfPoly = 0x11D

var (
	gfExp [510]byte // gfExp[i] = α^i, doubled so gfExp[log a + log b] needs no mod
	gfLog [256]byte // gfLog[α^i] = i; gfLog[0] is unused
)

func init() {
	x := 1
	for i := range 255 {
		gfExp[i] = byte(x)
		gfExp[i+255] = byte(x)
		gfLog[x] = byte(i)
		x <<= 1
		if x&0x100 != 0 {
			x ^= gfPoly
		}
	}
}

func gfMul(a, b byte) byte {
	if a == 0 || b == 0 {
		return 0
	}
	return gfExp[int(gfLog[a])+int(gfLog[b])]
}

// gfInv returns a^-1; a must not be 0.
func gfInv(a byte) byte { return gfExp[255-int(gfLog[a])] }

// gfPow returns x^n for n >= 0, with 0^0 = 1 (the Vandermonde convention).
func gfPow(x byte, n int) byte {
	if n == 0 {
		return 1
	}
	if x == 0 {
		return 0
	}
	return gfExp[(int(gfLog[x])*n)%255]
}

// gfInvert inverts the n×n row-major matrix a in place by Gauss–Jordan
// elimination, using w (at least n*n bytes) as scratch. It reports false if
// a is singular (a is then garbage). It does not allocate.
func gfInvert(a []byte, n int, w []byte) bool {
	a, w = a[:n*n], w[:n*n]
	// w starts as the identity and receives the inverse.
	clear(w)
	for i := range n {
		w[i*n+i] = 1
	}
	for col := range n {
		// Find a pivot at or below the diagonal and swap it up.
		p := col
		for p < n && a[p*n+col] == 0 {
			p++
		}
		if p == n {
			return false
		}
		if p != col {
			for j := range n {
				a[p*n+j], a[col*n+j] = a[col*n+j], a[p*n+j]
				w[p*n+j], w[col*n+j] = w[col*n+j], w[p*n+j]
			}
		}
		// Scale the pivot row to a leading 1.
		if c := a[col*n+col]; c != 1 {
			inv := gfInv(c)
			for j := range n {
				a[col*n+j] = gfMul(a[col*n+j], inv)
				w[col*n+j] = gfMul(w[col*n+j], inv)
			}
		}
		// Eliminate the column from every other row.
		for r := range n {
			f := a[r*n+col]
			if r == col || f == 0 {
				continue
			}
			for j := range n {
				a[r*n+j] ^= gfMul(f, a[col*n+j])
				w[r*n+j] ^= gfMul(f, w[col*n+j])
			}
		}
	}
	copy(a, w)
	return true
}

// parityMatrix returns rows parity rows of OpenPGM's systematic generator
// matrix for group size k (research §8.7, §8.8): row h is
// v(α^(k+h-1)) · V_top^-1, where v(x) = (1, x, …, x^(k-1)) and V_top has the
// rows v(0), v(α^0), …, v(α^(k-2)). This is Rizzo's construction: the full
// generator is V · V_top^-1 over the evaluation points 0, α^0, α^1, …, so
// its first k rows are the identity and row k+h is the parity row h. Rows
// do not depend on the block size n. k+rows must not exceed 255.
func parityMatrix(k, rows int) [][]byte {
	top := make([]byte, k*k)
	for r := range k {
		x := byte(0) // evaluation point of row r: 0, then α^(r-1)
		if r > 0 {
			x = gfExp[r-1]
		}
		for c := range k {
			top[r*k+c] = gfPow(x, c)
		}
	}
	if !gfInvert(top, k, make([]byte, k*k)) {
		panic("fec: Vandermonde matrix is singular") // distinct points: cannot happen
	}
	flat := make([]byte, rows*k)
	out := make([][]byte, rows)
	v := make([]byte, k)
	for h := range rows {
		x := gfExp[k+h-1] // α^(k+h-1); k+h-1 <= 253
		for c := range k {
			v[c] = gfPow(x, c)
		}
		row := flat[h*k : (h+1)*k : (h+1)*k]
		for c := range k {
			var s byte
			for i := range k {
				s ^= gfMul(v[i], top[i*k+c])
			}
			row[c] = s
		}
		out[h] = row
	}
	return out
}
