package fec

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/reedsolomon"
)

const (
	benchK    = 16
	benchTSDU = 1400
)

func benchGroup(b *testing.B) (*Code, []Original) {
	c := mustCode(b, benchK)
	g := makeGroup(rand.New(rand.NewPCG(29, 30)), benchK, benchTSDU, equalLen)
	return c, g
}

// BenchmarkEncoder: the sender's pro-active path, per group: k Adds
// (progressive EncodeIdx) and the parity packets. MB/s counts the
// originals' bytes.
func BenchmarkEncoder(b *testing.B) {
	c, g := benchGroup(b)
	for _, rows := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("k=%d/rows=%d", benchK, rows), func(b *testing.B) {
			e, _ := NewEncoder(c, benchTSDU, rows)
			buf := make([]byte, 0, benchTSDU+2)
			b.SetBytes(benchK * benchTSDU)
			b.ReportAllocs()
			tg := uint32(0)
			for b.Loop() {
				for i, o := range g {
					if err := e.Add(tg+uint32(i), o); err != nil {
						b.Fatal(err)
					}
				}
				for h := range rows {
					if _, err := e.Parity(buf, h); err != nil {
						b.Fatal(err)
					}
				}
				tg += benchK
			}
		})
	}
}

// BenchmarkCodeParity: the on-demand path, one parity packet rebuilt from
// the k originals (as the sender does from its transmit window).
func BenchmarkCodeParity(b *testing.B) {
	c, g := benchGroup(b)
	buf := make([]byte, 0, benchTSDU+2)
	b.SetBytes(benchK * benchTSDU)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Parity(buf, 0, 1, g); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecoder: the receiver, per group: the k-lost originals and lost
// parity packets go in (copied), the lost originals come out. MB/s counts
// the group's original bytes. lost=0 is the cost of a loss-free group.
func BenchmarkDecoder(b *testing.B) {
	c, g := benchGroup(b)
	for _, lost := range []int{0, 1, 2, 4} {
		b.Run(fmt.Sprintf("k=%d/lost=%d", benchK, lost), func(b *testing.B) {
			ps := encodeGroup(b, c, benchTSDU, 0, g, max(lost, 1))
			d := mustDecoder(b, c, benchTSDU, 8)
			rec := make([]Recovered, 0, benchK)
			b.SetBytes(benchK * benchTSDU)
			b.ReportAllocs()
			tg := uint32(0)
			for b.Loop() {
				for i := lost; i < benchK; i++ { // lose the first ones
					if _, err := d.AddOriginal(rec[:0], tg+uint32(i), g[i]); err != nil {
						b.Fatal(err)
					}
				}
				n := 0
				for h := range lost {
					p := ps[h]
					p.Seq = tg | uint32(h)
					r, err := d.AddParity(rec[:0], p)
					if err != nil {
						b.Fatal(err)
					}
					n += len(r)
				}
				if n != lost {
					b.Fatalf("rebuilt %d of %d", n, lost)
				}
				tg += benchK
			}
		})
	}
}

// BenchmarkReference measures the alternatives the design rejected, on the
// same k=16, 1400-byte group:
//   - encode/progressive-EncodeIdx: reedsolomon's EncodeIdx as each
//     original is sent (the Encoder does the same per-row multiply-add
//     directly: EncodeIdx's large-shard path allocates, see jumbo below);
//   - encode/buffer+Encode: copy the k originals, reedsolomon Encode at the
//     end (2 allocations per call inside reedsolomon);
//   - reconstruct/klauspost-cache: ReconstructData with the inversion cache
//     (6 allocations per call, and the cache grows with every new erasure
//     pattern: unbounded memory on a long-lived receiver);
//   - reconstruct/klauspost-nocache: without it (74 allocations at k=16);
//   - reconstruct/syndrome: the Decoder's arithmetic alone (0 allocations);
//   - jumbo: 9000-byte originals, 4 rows, EncodeIdx against the Encoder.
func BenchmarkReference(b *testing.B) {
	c, g := benchGroup(b)
	b.Run("jumbo/EncodeIdx/rows=4", func(b *testing.B) {
		rows := make([][]byte, 4)
		par := make([][]byte, 4)
		for h := range rows {
			rows[h], _ = c.Row(h)
			par[h] = make([]byte, 9000)
		}
		rs, _ := reedsolomon.New(benchK, 4, reedsolomon.WithCustomMatrix(rows), reedsolomon.WithMaxGoroutines(1))
		d := make([]byte, 9000)
		b.SetBytes(benchK * 9000)
		b.ReportAllocs()
		for b.Loop() {
			for i := range benchK {
				if err := rs.EncodeIdx(d, i, par); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("jumbo/Encoder/rows=4", func(b *testing.B) {
		e, _ := NewEncoder(c, 9000, 4)
		o := Original{TSDU: make([]byte, 9000)}
		b.SetBytes(benchK * 9000)
		b.ReportAllocs()
		for b.Loop() {
			for i := range benchK {
				if err := e.Add(uint32(i), o); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	data := make([][]byte, benchK)
	for i := range data {
		data[i] = g[i].TSDU
	}
	for _, m := range []int{1, 2, 4} {
		rows := make([][]byte, m)
		for h := range rows {
			rows[h], _ = c.Row(h)
		}
		rs, _ := reedsolomon.New(benchK, m, reedsolomon.WithCustomMatrix(rows), reedsolomon.WithMaxGoroutines(1))
		b.Run(fmt.Sprintf("encode/progressive-EncodeIdx/rows=%d", m), func(b *testing.B) {
			par := make([][]byte, m)
			for i := range par {
				par[i] = make([]byte, benchTSDU)
			}
			b.SetBytes(benchK * benchTSDU)
			b.ReportAllocs()
			for b.Loop() {
				for i := range par {
					clear(par[i])
				}
				for i := range benchK {
					if err := rs.EncodeIdx(data[i], i, par); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
		shards := make([][]byte, benchK+m)
		for i := range shards {
			shards[i] = make([]byte, benchTSDU)
		}
		b.Run(fmt.Sprintf("encode/buffer+Encode/rows=%d", m), func(b *testing.B) {
			b.SetBytes(benchK * benchTSDU)
			b.ReportAllocs()
			for b.Loop() {
				for i := range benchK {
					copy(shards[i], data[i])
				}
				if err := rs.Encode(shards); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	for _, lost := range []int{1, 2, 4} {
		rows := make([][]byte, lost)
		for h := range rows {
			rows[h], _ = c.Row(h)
		}
		shards := make([][]byte, benchK+lost)
		for i := range shards {
			shards[i] = make([]byte, benchTSDU)
			if i < benchK {
				copy(shards[i], data[i])
			}
		}
		rs, _ := reedsolomon.New(benchK, lost, reedsolomon.WithCustomMatrix(rows), reedsolomon.WithMaxGoroutines(1))
		if err := rs.Encode(shards); err != nil {
			b.Fatal(err)
		}
		for _, cache := range []bool{true, false} {
			name := "klauspost-cache"
			if !cache {
				name = "klauspost-nocache"
			}
			b.Run(fmt.Sprintf("reconstruct/%s/lost=%d", name, lost), func(b *testing.B) {
				rs, _ := reedsolomon.New(benchK, lost, reedsolomon.WithCustomMatrix(rows),
					reedsolomon.WithMaxGoroutines(1), reedsolomon.WithInversionCache(cache))
				work := make([][]byte, len(shards))
				b.SetBytes(benchK * benchTSDU)
				b.ReportAllocs()
				for b.Loop() {
					copy(work, shards)
					for i := range lost {
						work[i] = work[i][:0] // lost, refilled in place
					}
					if err := rs.ReconstructData(work); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		b.Run(fmt.Sprintf("reconstruct/syndrome/lost=%d", lost), func(b *testing.B) {
			d := mustDecoder(b, c, benchTSDU, 1)
			gr := &d.groups[0]
			d.claim(gr, 0)
			for i := lost; i < benchK; i++ {
				gr.orig[i] = gr.take()
				copy(gr.bufs[gr.orig[i]], data[i])
				gr.olen[i] = benchTSDU
			}
			for h := range lost {
				gr.par = append(gr.par, parEntry{h: h, buf: gr.take()})
			}
			gr.plen = benchTSDU
			rec := make([]Recovered, 0, lost)
			b.SetBytes(benchK * benchTSDU)
			b.ReportAllocs()
			for b.Loop() {
				for h, pe := range gr.par {
					copy(gr.bufs[pe.buf], shards[benchK+h]) // syndromes are computed in place
				}
				if _, err := d.decode(rec[:0], gr); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
