package mcast

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestByteFIFO checks byteFIFO against a model: random strings in and
// out, in order, each read back as written; an empty FIFO takes a string
// of its whole size; in use never exceeds the size.
func TestByteFIFO(t *testing.T) {
	const size = 1000
	rng := rand.New(rand.NewPCG(1, 2))
	f := newByteFIFO(size)
	var q [][]byte // model: what is in, oldest first, and the FIFO's copy
	var want [][]byte
	used := 0
	for i := range 200000 {
		if rng.IntN(2) == 0 {
			n := rng.IntN(300)
			if rng.IntN(50) == 0 {
				n = 0
			}
			b, ok := f.alloc(n)
			if !ok {
				if len(q) == 0 {
					t.Fatalf("step %d: empty FIFO refused %d bytes", i, n)
				}
				continue
			}
			if len(b) != n || cap(b) != n {
				t.Fatalf("step %d: got %d bytes (cap %d), want %d", i, len(b), cap(b), n)
			}
			for j := range b {
				b[j] = byte(rng.Uint32())
			}
			q, want = append(q, b), append(want, bytes.Clone(b))
			used += n
			if used > size {
				t.Fatalf("step %d: %d bytes in use, size %d", i, used, size)
			}
		} else if len(q) > 0 {
			if !bytes.Equal(q[0], want[0]) {
				t.Fatalf("step %d: oldest string overwritten", i)
			}
			f.free(len(q[0]))
			used -= len(q[0])
			q, want = q[1:], want[1:]
		}
	}
	for len(q) > 0 {
		f.free(len(q[0]))
		q = q[1:]
	}
	if b, ok := f.alloc(size); !ok || len(b) != size {
		t.Fatal("emptied FIFO refused its whole size")
	}
}
