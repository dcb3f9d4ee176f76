package mcast_test

import (
	"context"
	"net/netip"
	"testing"

	"github.com/relmcast/relmcast/mcast"
	"github.com/relmcast/relmcast/mcast/mcasttest"
)

// pipe is a sender and a receiver on an in-memory network with no loss.
type pipe struct {
	nw *mcasttest.Network
	s  *mcast.Sender
	r  *mcast.Receiver
	ev mcast.Event
}

func newPipe(tb testing.TB) *pipe { return newPipeFEC(tb, 0, 0) }

// newPipeFEC is newPipe with FEC groups of k and h pro-active parity
// packets (k = 0: off).
func newPipeFEC(tb testing.TB, k, h int) *pipe {
	nw := mcasttest.NewNetwork(mcasttest.NetworkConfig{QueueLen: 1 << 16})
	rep := nw.Endpoint(netip.MustParseAddr("10.0.1.1"), 0)
	rep.Join(group)
	// Small window and queue so warm-up fills them: each slot gets its
	// buffer once, and steady state reuses them.
	r, err := mcast.Listen(group, &mcast.Config{Transport: rep, Queue: 256})
	if err != nil {
		tb.Fatal(err)
	}
	s, err := mcast.NewSender(group, &mcast.Config{Transport: nw.Endpoint(netip.MustParseAddr("10.0.0.1"), group.Port()),
		Rate: -1, Linger: -1, WindowPackets: 1024, FECGroupSize: k, FECProactive: h})
	if err != nil {
		tb.Fatal(err)
	}
	p := &pipe{nw: nw, s: s, r: r}
	tb.Cleanup(func() { s.Close(); r.Close(); nw.Close() })
	return p
}

// roundTrip sends msg and reads until it arrives as data.
func (p *pipe) roundTrip(tb testing.TB, msg []byte) {
	if err := p.s.Send(context.Background(), msg); err != nil {
		tb.Fatal(err)
	}
	for {
		if err := p.r.Read(context.Background(), &p.ev); err != nil {
			tb.Fatal(err)
		}
		if p.ev.Kind == mcast.EventData {
			return
		}
	}
}

// TestAllocsPerMessage: in steady state, sending a message and reading
// it (both goroutines of each end included) allocates nothing.
func TestAllocsPerMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	t.Run("plain", func(t *testing.T) { testAllocsPerMessage(t, newPipe(t)) })
	t.Run("fec", func(t *testing.T) { testAllocsPerMessage(t, newPipeFEC(t, 16, 2)) })
}

func testAllocsPerMessage(t *testing.T, p *pipe) {
	msg := make([]byte, 1000)
	for range 2000 {
		p.roundTrip(t, msg)
	}
	n := testing.AllocsPerRun(5000, func() { p.roundTrip(t, msg) })
	t.Logf("%.3f allocations per message, send and receive paths together", n)
	if n > 0.01 {
		t.Fatalf("%.3f allocations per message", n)
	}
}

// BenchmarkRoundTrip sends one message and waits for it, so nothing
// queues: the latency of the whole stack.
func BenchmarkRoundTrip(b *testing.B) {
	p := newPipe(b)
	msg := make([]byte, 1000)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		p.roundTrip(b, msg)
	}
}

// BenchmarkRoundTripFEC is BenchmarkRoundTrip with FEC on (groups of 16,
// 2 pro-active parity packets).
func BenchmarkRoundTripFEC(b *testing.B) {
	p := newPipeFEC(b, 16, 2)
	msg := make([]byte, 1000)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		p.roundTrip(b, msg)
	}
}
