package mcasttest

import (
	"net/netip"
	"testing"
)

// fanout writes one batch of 32 datagrams of 1400 bytes to a group of three
// and reads them back on each member, on one goroutine.
type fanout struct {
	src *Endpoint
	rcv []*Endpoint
	out []Datagram
	in  []Datagram
}

func newFanout(tb testing.TB, imp Impairment) *fanout {
	n := NewNetwork(NetworkConfig{Seed: 1})
	tb.Cleanup(n.Close)
	f := &fanout{src: n.Endpoint(h1, 7500)}
	for _, h := range []netip.Addr{h2, h3, h4} {
		e := n.Endpoint(h, 7500)
		e.Join(group)
		e.SetImpairment(imp)
		f.rcv = append(f.rcv, e)
	}
	payload := make([]byte, 1400)
	for range 32 {
		f.out = append(f.out, Datagram{Buf: payload, N: len(payload), Addr: group})
		f.in = append(f.in, Datagram{Buf: make([]byte, 1500)})
	}
	return f
}

func (f *fanout) round(tb testing.TB) {
	if _, err := f.src.WriteBatch(f.out); err != nil {
		tb.Fatal(err)
	}
	for _, e := range f.rcv {
		for len(e.q) > 0 {
			if _, err := e.ReadBatch(f.in); err != nil {
				tb.Fatal(err)
			}
		}
	}
}

func BenchmarkFanout3(b *testing.B) {
	for _, bc := range []struct {
		name string
		imp  Impairment
	}{
		{"clean", Impairment{}},
		{"impaired", Impairment{Loss: 0.05, Reorder: 0.05, Duplicate: 0.05, Seed: 1}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			f := newFanout(b, bc.imp)
			b.ReportAllocs()
			b.SetBytes(32 * 1400) // per WriteBatch, delivered three times
			for b.Loop() {
				f.round(b)
			}
			b.ReportMetric(float64(b.N*32*3)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}

// Steady-state traffic allocates nothing: buffers come from a pool. (Skipped
// under the race detector, which makes sync.Pool drop items on purpose.)
func TestSteadyStateAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool is lossy under -race")
	}
	f := newFanout(t, Impairment{Loss: 0.05, Reorder: 0.05, Duplicate: 0.05, Seed: 1})
	for range 100 {
		f.round(t)
	}
	if allocs := testing.AllocsPerRun(200, func() { f.round(t) }); allocs > 0 {
		t.Errorf("%v allocs per round of 32 datagrams × 3 receivers, want 0", allocs)
	}
}
