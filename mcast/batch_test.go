package mcast_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/relmcast/relmcast/internal/lossy"
	"github.com/relmcast/relmcast/internal/wire"
	"github.com/relmcast/relmcast/mcast"
	"github.com/relmcast/relmcast/mcast/mcasttest"
	"github.com/relmcast/relmcast/session"
)

// batchSize is the size of message i of the batching tests: mostly small
// (so many share a packet), some at and just past the largest batchable
// size (1438 bytes at MTU 1500: 1448 - 8 for OPT_LENGTH and OPT_BATCH - 2
// for the frame length), some fragmented.
func batchSize(i int) int {
	switch {
	case i%97 == 11:
		return 1438 // the largest that is batched
	case i%97 == 12:
		return 1439 // one packet of its own
	case i%97 == 13:
		return 1448 // the largest single packet
	case i%97 == 14:
		return 1449 // two fragments
	case i%41 == 7:
		return 2000 + i%3000 // fragmented
	case i%29 == 5:
		return 0
	}
	return 4 + i%120
}

// batchMsg builds message i: its index (when it has room), then filler.
func batchMsg(i int) []byte {
	b := make([]byte, batchSize(i))
	if len(b) >= 4 {
		binary.BigEndian.PutUint32(b, uint32(i))
	}
	for j := 4; j < len(b); j++ {
		b[j] = byte(i*13 + j)
	}
	return b
}

// batchStream checks one receiver's stream from one source: message i
// must be batchMsg(i) exactly, unless a loss event came since the last
// message, in which case the stream may skip ahead.
type batchStream struct {
	next   int
	loss   bool
	got    int
	losses int
	lost   uint64
	seqs   map[uint32]int // messages per sequence number
}

func (c *batchStream) data(ev *mcast.Event) error {
	if c.seqs == nil {
		c.seqs = map[uint32]int{}
	}
	c.seqs[ev.Seq]++
	i := c.next
	if c.loss { // after a loss: the first message from here that matches
		for i < c.next+100000 && string(ev.Data) != string(batchMsg(i)) {
			i++
		}
	}
	if string(ev.Data) != string(batchMsg(i)) {
		return fmt.Errorf("message %d: got %d bytes %.8x, want %d bytes", i, len(ev.Data), ev.Data, batchSize(i))
	}
	c.next, c.loss = i+1, false
	c.got++
	return nil
}

// runBatch sends n messages from one batching sender to rxs receivers
// over an in-memory network with imp on the receivers' side, closes it,
// and returns each receiver's stream and stats and the sender's stats.
func runBatch(t *testing.T, n, rxs int, imp mcasttest.Impairment, cfg mcast.Config) ([]*batchStream, []mcast.ReceiverStats, mcast.SenderStats) {
	var (
		streams []*batchStream
		rstats  []mcast.ReceiverStats
		sstats  mcast.SenderStats
	)
	synctest.Test(t, func(t *testing.T) {
		nw := mcasttest.NewNetwork(mcasttest.NetworkConfig{Latency: time.Millisecond, QueueLen: 100000})
		defer nw.Close()
		type result struct {
			c   *batchStream
			err error
		}
		results := make(chan result, rxs)
		var rs []*mcast.Receiver
		for i := range rxs {
			ep := nw.Endpoint(netip.AddrFrom4([4]byte{10, 0, 1, byte(i + 1)}), 0)
			ep.Join(group)
			imp := imp
			imp.Seed = uint64(i + 1)
			ep.SetImpairment(imp)
			rc := cfg
			rc.Batch, rc.BatchSize, rc.Transport, rc.Seed = 0, 0, ep, uint64(100+i)
			r, err := mcast.Listen(group, &rc)
			if err != nil {
				t.Fatal(err)
			}
			rs = append(rs, r)
			go func() {
				c := &batchStream{}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
				defer cancel()
				var ev mcast.Event
				for {
					if err := r.Read(ctx, &ev); err != nil {
						results <- result{c, err}
						return
					}
					switch ev.Kind {
					case mcast.EventData:
						if err := c.data(&ev); err != nil {
							results <- result{c, err}
							return
						}
					case mcast.EventLoss:
						c.loss = true
						c.losses++
						c.lost += ev.Lost
					case mcast.EventSourceGone:
						results <- result{c, nil}
						return
					}
				}
			}()
		}
		sc := cfg
		sc.Transport, sc.Seed = nw.Endpoint(netip.MustParseAddr("10.0.0.1"), group.Port()), 1
		s, err := mcast.NewSender(group, &sc)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if err := s.Send(context.Background(), batchMsg(i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		sstats = s.Stats()
		for range rxs {
			res := <-results
			if res.err != nil {
				t.Fatalf("receiver, after %d messages: %v", res.c.got, res.err)
			}
			streams = append(streams, res.c)
		}
		for _, r := range rs {
			r.Close()
			rstats = append(rstats, r.Stats())
		}
	})
	return streams, rstats, sstats
}

// TestBatchStack: under loss, reordering and duplication, every message
// of a batching sender arrives exactly once, in order, whatever its size:
// small ones packed, the largest batchable one, those just too large for
// a batch, and fragmented ones in between.
func TestBatchStack(t *testing.T) {
	const n = 6000
	for _, tc := range []struct {
		name string
		imp  mcasttest.Impairment
	}{
		{"0%", mcasttest.Impairment{}},
		{"10%", mcasttest.Impairment{Loss: 0.10}},
		{"burst", mcasttest.Impairment{BurstLoss: 0.01, BurstLen: 20}},
		{"reorder+dup", mcasttest.Impairment{Loss: 0.02, Reorder: 0.05, Duplicate: 0.05}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := mcast.Config{Rate: 50_000_000, NAKRetries: 50, Batch: time.Millisecond}
			streams, rstats, st := runBatch(t, n, 2, tc.imp, cfg)
			var bytes uint64
			for i := range n {
				bytes += uint64(batchSize(i))
			}
			for i, c := range streams {
				if c.got != n || c.losses != 0 {
					t.Errorf("receiver %d: %d of %d messages, %d loss events", i, c.got, n, c.losses)
				}
				// Stats count messages, not packets, and not the framing.
				if rstats[i].Messages != n || rstats[i].Bytes != bytes {
					t.Errorf("receiver %d counted %d messages, %d bytes; want %d, %d", i, rstats[i].Messages, rstats[i].Bytes, n, bytes)
				}
				t.Logf("receiver %d: %d messages in %d sequence numbers; repairs %d, batch malformed %d",
					i, c.got, len(c.seqs), rstats[i].Repairs, rstats[i].BatchMalformed)
			}
			t.Logf("sender: %d messages in %d ODATA, %d RDATA", st.Messages, st.ODATA, st.RDATA)
			if st.Messages != n || st.MessageBytes != bytes {
				t.Errorf("sender counted %d messages, %d bytes; want %d, %d", st.Messages, st.MessageBytes, n, bytes)
			}
			// Small messages share packets: far fewer packets than messages.
			if st.ODATA > n/4 {
				t.Errorf("%d ODATA for %d messages: not batched", st.ODATA, n)
			}
		})
	}
}

// TestBatchLossEvent: a batch no receiver can get becomes one loss event
// (one sequence number) right where it was, and the messages around it
// arrive.
func TestBatchLossEvent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := mcasttest.NewNetwork(mcasttest.NetworkConfig{Latency: time.Millisecond})
		defer nw.Close()
		// Batches of exactly 10 messages of 4 bytes (6 with framing).
		r, s := memPair(t, nw, mcast.Config{NAKRetries: 50}, mcast.Config{WindowPackets: 5, Batch: time.Hour, BatchSize: 64}, dropSeq(3))
		defer r.Close()
		for i := range 200 {
			if err := s.Send(context.Background(), []byte(fmt.Sprintf("m%03d", i))); err != nil {
				t.Fatal(err)
			}
		}
		s.Close()
		var ev mcast.Event
		var got []string
		for ev.Kind != mcast.EventSourceGone {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			err := r.Read(ctx, &ev)
			cancel()
			if err != nil {
				t.Fatalf("after %d events: %v", len(got), err)
			}
			switch ev.Kind {
			case mcast.EventData:
				got = append(got, fmt.Sprintf("%s@%d", ev.Data, ev.Seq))
			case mcast.EventLoss:
				got = append(got, fmt.Sprintf("loss %d-%d %d %v", ev.Seq, ev.LastSeq, ev.Lost, ev.LossReason))
			}
		}
		if len(got) != 191 || got[29] != "m029@2" || got[30] != "loss 3-3 1 window-passed" || got[31] != "m040@4" {
			t.Fatalf("%d events around the hole: %q", len(got), got[28:33])
		}
		if st := s.Stats(); st.ODATA != 20 || st.Messages != 200 {
			t.Errorf("sender: %d ODATA, %d messages; want 20 and 200", st.ODATA, st.Messages)
		}
	})
}

// TestBatchFlushDelay: a batch that does not fill up goes out Batch after
// its first message, not before, in one packet.
func TestBatchFlushDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := mcasttest.NewNetwork(mcasttest.NetworkConfig{Latency: time.Millisecond})
		defer nw.Close()
		const delay = 20 * time.Millisecond
		r, s := memPair(t, nw, mcast.Config{}, mcast.Config{Batch: delay, Linger: -1}, nil)
		defer r.Close()
		defer s.Close()
		start := time.Now()
		for i := range 3 {
			if err := s.Send(context.Background(), []byte{byte(i)}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Millisecond)
		}
		var ev mcast.Event
		read := func(d time.Duration) error {
			ctx, cancel := context.WithTimeout(context.Background(), d)
			defer cancel()
			for {
				if err := r.Read(ctx, &ev); err != nil || ev.Kind == mcast.EventData {
					return err
				}
			}
		}
		// Delivery at start+delay+1ms latency: nothing before.
		if err := read(delay - 3*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("before the delay: %v, %v", err, &ev)
		}
		for i := range 3 {
			if err := read(time.Second); err != nil {
				t.Fatal(err)
			}
			if at := time.Since(start); len(ev.Data) != 1 || ev.Data[0] != byte(i) || ev.Seq != 0 || at != delay+time.Millisecond {
				t.Fatalf("message %d: %v at %v, want 1 byte, seq 0, at %v", i, &ev, at, delay+time.Millisecond)
			}
		}
		if st := s.Stats(); st.ODATA != 1 || st.Messages != 3 {
			t.Fatalf("%d ODATA, %d messages; want 1 and 3", st.ODATA, st.Messages)
		}
	})
}

// TestBatchFlushAtClose: Close sends the open batch, however long the
// delay.
func TestBatchFlushAtClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := mcasttest.NewNetwork(mcasttest.NetworkConfig{Latency: time.Millisecond})
		defer nw.Close()
		r, s := memPair(t, nw, mcast.Config{}, mcast.Config{Batch: time.Hour}, nil)
		defer r.Close()
		start := time.Now()
		for i := range 10 {
			if err := s.Send(context.Background(), []byte{byte(i)}); err != nil {
				t.Fatal(err)
			}
		}
		s.Close()
		var ev mcast.Event
		var got []byte
		for ev.Kind != mcast.EventSourceGone {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			err := r.Read(ctx, &ev)
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			if ev.Kind == mcast.EventData {
				got = append(got, ev.Data...)
			}
		}
		if string(got) != "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09" {
			t.Fatalf("got %x", got)
		}
		if d := time.Since(start); d > time.Minute {
			t.Fatalf("took %v: the batch waited for its delay", d)
		}
	})
}

// TestBatchPlainReceiver: a batching sender's packets never reach a plain
// PGM receiver as data. A receiver core configured as plain PGM (as
// OpenPGM is: one data-destination port) drops every packet of the
// session, SPMs included, and delivers no event; every data packet
// carries the batch dport and, when it packs messages, OPT_BATCH.
func TestBatchPlainReceiver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := mcasttest.NewNetwork(mcasttest.NetworkConfig{Latency: time.Millisecond})
		defer nw.Close()
		tap := nw.Endpoint(netip.MustParseAddr("10.0.1.1"), 0)
		tap.Join(group)
		plain := session.NewReceiver(session.ReceiverConfig{DPort: group.Port(), Group: group.Addr()})
		aware := session.NewReceiver(session.ReceiverConfig{DPort: group.Port(), BatchDPort: session.BatchDPort(group.Port()), Group: group.Addr()})
		var packets, batches, data int
		tapped := make(chan error, 1)
		go func() {
			ds := make([]mcast.Datagram, 16)
			for i := range ds {
				ds[i].Buf = make([]byte, 1500)
			}
			var p wire.Packet
			for {
				n, err := tap.ReadBatch(ds)
				if err != nil {
					tapped <- nil
					return
				}
				for _, d := range ds[:n] {
					if err := wire.Parse(d.Buf[:d.N], &p); err != nil {
						tapped <- err
						return
					}
					packets++
					if p.DPort != session.BatchDPort(group.Port()) {
						tapped <- fmt.Errorf("%v with dport %d", p.Type, p.DPort)
						return
					}
					if p.Type == wire.TypeODATA {
						data++
						if p.Batch {
							batches++
						}
					}
					plain.HandlePacket(time.Now(), &p, d.Addr.Addr())
					aware.HandlePacket(time.Now(), &p, d.Addr.Addr())
				}
			}
		}()
		sep := nw.Endpoint(netip.MustParseAddr("10.0.0.1"), group.Port())
		s, err := mcast.NewSender(group, &mcast.Config{Transport: sep, Batch: time.Millisecond, Linger: -1})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 300 {
			if err := s.Send(context.Background(), batchMsg(i)); err != nil {
				t.Fatal(err)
			}
		}
		s.Close()
		time.Sleep(time.Second) // all delivered: the network's latency is 1ms
		synctest.Wait()
		tap.Close()
		if err := <-tapped; err != nil {
			t.Fatal(err)
		}
		var plainEvents, msgs int
		plain.Deliver(func(*session.Event) bool { plainEvents++; return true })
		aware.Deliver(func(e *session.Event) bool {
			if e.Kind == session.EventData {
				msgs += max(1, e.Batch)
			}
			return true
		})
		ps := plain.Stats()
		t.Logf("%d packets (%d ODATA, %d batched); plain receiver: dropped %d, events %d; aware receiver: %d messages",
			packets, data, batches, ps.Dropped, plainEvents, msgs)
		if plainEvents != 0 || ps.Dropped != uint64(packets) || ps.Messages != 0 {
			t.Fatalf("plain receiver: %d events, dropped %d of %d packets", plainEvents, ps.Dropped, packets)
		}
		if batches == 0 || batches == data || msgs != 300 {
			t.Fatalf("%d batched of %d ODATA, %d messages to the aware receiver", batches, data, msgs)
		}
	})
}

// TestBatchAllocs: in steady state, batched messages cost no allocation
// on either side (both goroutines of each end included).
func TestBatchAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	p := newBatchPipe(t)
	msg := make([]byte, 64)
	for range 3000 { // the sender's window (1024) and more: every buffer has been made
		p.batchRound(t, msg)
	}
	n := testing.AllocsPerRun(1000, func() { p.batchRound(t, msg) })
	t.Logf("%.4f allocations per batch of %d messages", n, batchPerPacket)
	if n > 0.01 {
		t.Fatalf("%.3f allocations per batch", n)
	}
}

// batchPerPacket 64-byte messages fill a batch of BatchSize 66*21 exactly,
// so it goes out at once.
const batchPerPacket = 21

func newBatchPipe(tb testing.TB) *pipe {
	nw := mcasttest.NewNetwork(mcasttest.NetworkConfig{QueueLen: 1 << 16})
	rep := nw.Endpoint(netip.MustParseAddr("10.0.1.1"), 0)
	rep.Join(group)
	r, err := mcast.Listen(group, &mcast.Config{Transport: rep, Queue: 256})
	if err != nil {
		tb.Fatal(err)
	}
	s, err := mcast.NewSender(group, &mcast.Config{Transport: nw.Endpoint(netip.MustParseAddr("10.0.0.1"), group.Port()),
		Rate: -1, Linger: -1, WindowPackets: 1024, Batch: time.Second, BatchSize: batchPerPacket * (64 + 2)})
	if err != nil {
		tb.Fatal(err)
	}
	p := &pipe{nw: nw, s: s, r: r}
	tb.Cleanup(func() { s.Close(); r.Close(); nw.Close() })
	return p
}

// batchRound sends one full batch and reads its messages.
func (p *pipe) batchRound(tb testing.TB, msg []byte) {
	for range batchPerPacket {
		if err := p.s.Send(context.Background(), msg); err != nil {
			tb.Fatal(err)
		}
	}
	for n := 0; n < batchPerPacket; {
		if err := p.r.Read(context.Background(), &p.ev); err != nil {
			tb.Fatal(err)
		}
		if p.ev.Kind == mcast.EventData {
			n++
		}
	}
}

// BenchmarkBatch64 streams 64-byte messages through a batching sender and
// a receiver over the in-memory network: the whole stack's CPU cost per
// message (four goroutines), one op per message. PGM has no flow control:
// the sender stays at most 100000 messages ahead of the reader, as a
// rate limit would keep it, so that nothing is lost however large b.N.
func BenchmarkBatch64(b *testing.B) {
	p := newBatchPipe(b)
	msg := make([]byte, 64)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	done := make(chan error, 1)
	n := b.N
	var got atomic.Int64
	go func() {
		var ev mcast.Event
		for got.Load() < int64(n) {
			if err := p.r.Read(context.Background(), &ev); err != nil {
				done <- err
				return
			}
			switch ev.Kind {
			case mcast.EventData:
				got.Add(1)
			case mcast.EventLoss:
				done <- fmt.Errorf("after %d messages: %v", got.Load(), &ev)
				return
			}
		}
		done <- nil
	}()
	b.ResetTimer()
	for i := range n {
		for i&1023 == 0 && int64(i)-got.Load() > 100000 {
			select {
			case err := <-done:
				b.Fatal(err)
			case <-time.After(20 * time.Microsecond):
			}
		}
		if err := p.s.Send(context.Background(), msg); err != nil {
			b.Fatal(err)
		}
	}
	// Fill the last batch so it goes at once.
	for range batchPerPacket {
		if err := p.s.Send(context.Background(), msg); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case err := <-done:
		if err != nil {
			b.Fatal(err)
		}
	case <-time.After(time.Minute):
		b.Fatalf("%d of %d messages after a minute", got.Load(), n)
	}
}

// smallMsg is message i of source src for TestSocketsBatch: mostly
// small, every 97th fragmented.
func smallMsg(src byte, i int) []byte {
	n := 5 + i%60
	if i%97 == 50 {
		n = 3000
	}
	b := make([]byte, n)
	b[0] = src
	binary.BigEndian.PutUint32(b[1:], uint32(i))
	for j := 5; j < n; j++ {
		b[j] = byte(i + j*3 + int(src))
	}
	return b
}

// TestSocketsBatch: over real multicast sockets (GSO/GRO where the
// kernel has them) with 5% loss at the receivers, a batching sender and a
// plain one share the group and port; both receivers get every message
// of both, in order.
func TestSocketsBatch(t *testing.T) {
	inNetns(t)
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	const messages = 20000
	group := netip.AddrPortFrom(netip.MustParseAddr("239.192.0.1"), randomPort())
	cfg := mcast.Config{Interface: lo, NAKRetries: 50, Linger: 3 * time.Second, Rate: 20_000_000}
	var rxs []*mcast.Receiver
	for i := range 2 {
		c := cfg
		c.Seed = uint64(i + 1)
		lc := lossy.Config{Loss: 0.05, Seed: uint64(i + 1)}
		c.WrapTransport = func(tr mcast.Transport) mcast.Transport { return lossy.Wrap(tr, lc) }
		r, err := mcast.Listen(group, &c)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		rxs = append(rxs, r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	errs := make(chan error, 4)
	for si, addr := range []string{"127.0.0.1", "127.0.0.2"} {
		c := cfg
		c.Addr = netip.MustParseAddr(addr)
		if si == 0 {
			c.Batch = time.Millisecond
		}
		s, err := mcast.NewSender(group, &c)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for i := range messages {
				if err := s.Send(ctx, smallMsg(byte(si), i)); err != nil {
					errs <- err
					return
				}
			}
			err := s.Close()
			st := s.Stats()
			t.Logf("sender %d (batch %v): %d messages in %d ODATA, %d RDATA", si, c.Batch, st.Messages, st.ODATA, st.RDATA)
			errs <- err
		}()
	}
	for ri, r := range rxs {
		go func() {
			next := map[mcast.SourceID]int{}
			var ev mcast.Event
			for gone := 0; gone < 2; {
				if err := r.Read(ctx, &ev); err != nil {
					errs <- fmt.Errorf("receiver %d: %w", ri, err)
					return
				}
				switch ev.Kind {
				case mcast.EventData:
					i := next[ev.Source]
					if len(ev.Data) < 5 || string(ev.Data) != string(smallMsg(ev.Data[0], i)) {
						errs <- fmt.Errorf("receiver %d source %v: message %d wrong (%d bytes)", ri, ev.Source, i, len(ev.Data))
						return
					}
					next[ev.Source] = i + 1
				case mcast.EventLoss:
					errs <- fmt.Errorf("receiver %d: %v", ri, &ev)
					return
				case mcast.EventSourceGone:
					if next[ev.Source] != messages {
						errs <- fmt.Errorf("receiver %d source %v: %d of %d messages", ri, ev.Source, next[ev.Source], messages)
						return
					}
					gone++
				}
			}
			st := r.Stats()
			t.Logf("receiver %d: %d messages, NAKs %d, repairs %d", ri, st.Messages, st.NAKs, st.Repairs)
			errs <- nil
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
