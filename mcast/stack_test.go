package mcast_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/relmcast/relmcast/internal/wire"
	"github.com/relmcast/relmcast/mcast"
	"github.com/relmcast/relmcast/mcast/mcasttest"
)

var group = netip.MustParseAddrPort("239.192.0.1:7500")

// msgSize is the size of test message i: mostly one packet, every 50th
// fragmented, a few tiny.
func msgSize(i int) int {
	switch {
	case i%50 == 49:
		return 5000 + i%97
	case i%10 == 3:
		return 9
	}
	return 9 + (i*7919)%1400
}

// makeMsg builds test message i of source src: its index, then filler
// derived from both, so a receiver can check every byte.
func makeMsg(src byte, i int) []byte {
	b := make([]byte, msgSize(i))
	b[0] = src
	binary.BigEndian.PutUint32(b[1:], uint32(i))
	for j := 5; j < len(b); j++ {
		b[j] = byte(i*31 + j*7 + int(src))
	}
	return b
}

// checkMsg returns the source byte and index of a test message, or an
// error if any byte is wrong.
func checkMsg(b []byte) (byte, int, error) {
	if len(b) < 5 {
		return 0, 0, fmt.Errorf("message of %d bytes", len(b))
	}
	src, i := b[0], int(binary.BigEndian.Uint32(b[1:]))
	want := makeMsg(src, i)
	if string(want) != string(b) {
		return 0, 0, fmt.Errorf("message %d of source %d corrupted (len %d, want %d)", i, src, len(b), len(want))
	}
	return src, i, nil
}

// streamCheck verifies one receiver's stream from one source: messages
// in order, none twice, and any skipped index preceded by a loss event.
type streamCheck struct {
	next      int  // next message index expected
	lossSince bool // a loss event came since the last message
	got       int
	losses    int
	lost      uint64
	gone      bool
	events    []string
}

func (c *streamCheck) event(ev *mcast.Event) error {
	if len(c.events) < 16 || ev.Kind != mcast.EventData && len(c.events) < 64 {
		c.events = append(c.events, ev.String())
	}
	if c.gone {
		return fmt.Errorf("event after source-gone: %v", ev)
	}
	switch ev.Kind {
	case mcast.EventData:
		_, i, err := checkMsg(ev.Data)
		if err != nil {
			return err
		}
		switch {
		case i == c.next:
		case i > c.next && c.lossSince:
		case i < c.next:
			return fmt.Errorf("message %d after %d: duplicate or out of order", i, c.next-1)
		default:
			return fmt.Errorf("messages %d..%d missing without a loss event", c.next, i-1)
		}
		c.next, c.lossSince = i+1, false
		c.got++
	case mcast.EventLoss:
		c.lossSince = true
		c.losses++
		c.lost += ev.Lost
	case mcast.EventSourceGone:
		c.gone = true
	}
	return nil
}

type stackConfig struct {
	sources, receivers, messages int
	impair                       mcasttest.Impairment
	net                          mcasttest.NetworkConfig
	cfg                          mcast.Config
	wantComplete                 bool
	// rxCfg, if set, adjusts receiver i's Config; drop, if set, gives
	// receiver i's endpoint a drop function.
	rxCfg func(i int, c *mcast.Config)
	drop  func(i int) func(mcasttest.Datagram) bool
	// out, if set, receives the final stats and streams.
	out *stackResult
}

type stackResult struct {
	senders   []mcast.SenderStats
	receivers []mcast.ReceiverStats
	streams   []*streamCheck // of every receiver and source
}

// runStack sends messages from each source to every receiver over an
// in-memory network, closes the sources (FIN), and checks every stream.
// It runs inside a synctest bubble: time is fake, so long repair timers
// cost nothing, and the bubble fails the test if a goroutine leaks.
func runStack(t *testing.T, sc stackConfig) {
	synctest.Test(t, func(t *testing.T) {
		nw := mcasttest.NewNetwork(sc.net)
		defer nw.Close()
		base := sc.cfg
		base.Seed = 1
		var rxs []*mcast.Receiver
		for i := range sc.receivers {
			ep := nw.Endpoint(netip.AddrFrom4([4]byte{10, 0, 1, byte(i + 1)}), 0)
			ep.Join(group)
			imp := sc.impair
			imp.Seed = uint64(i + 1)
			ep.SetImpairment(imp)
			if sc.drop != nil {
				ep.SetDrop(sc.drop(i))
			}
			cfg := base
			cfg.Transport, cfg.Seed = ep, uint64(100+i)
			if sc.rxCfg != nil {
				sc.rxCfg(i, &cfg)
			}
			r, err := mcast.Listen(group, &cfg)
			if err != nil {
				t.Fatal(err)
			}
			rxs = append(rxs, r)
		}
		type result struct {
			streams map[mcast.SourceID]*streamCheck
			err     error
		}
		results := make(chan result, len(rxs))
		for _, r := range rxs {
			go func() {
				streams := map[mcast.SourceID]*streamCheck{}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
				defer cancel()
				var ev mcast.Event
				gone := 0
				for gone < sc.sources {
					if err := r.Read(ctx, &ev); err != nil {
						results <- result{streams, err}
						return
					}
					c := streams[ev.Source]
					if c == nil {
						c = &streamCheck{}
						streams[ev.Source] = c
					}
					if err := c.event(&ev); err != nil {
						results <- result{streams, fmt.Errorf("source %v: %w", ev.Source, err)}
						return
					}
					if ev.Kind == mcast.EventSourceGone {
						gone++
					}
				}
				results <- result{streams, nil}
			}()
		}
		done := make(chan error, sc.sources)
		var snds []*mcast.Sender
		for s := range sc.sources {
			ep := nw.Endpoint(netip.AddrFrom4([4]byte{10, 0, 0, byte(s + 1)}), group.Port())
			cfg := base
			cfg.Transport = ep
			snd, err := mcast.NewSender(group, &cfg)
			if err != nil {
				t.Fatal(err)
			}
			snds = append(snds, snd)
			go func() {
				for i := range sc.messages {
					if err := snd.Send(context.Background(), makeMsg(byte(s), i)); err != nil {
						done <- err
						return
					}
				}
				done <- snd.Close()
			}()
		}
		for range sc.sources {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
		for i := range rxs {
			res := <-results
			if res.err != nil {
				t.Fatalf("receiver: %v", res.err)
			}
			if len(res.streams) != sc.sources {
				t.Fatalf("receiver %d saw %d sources, want %d", i, len(res.streams), sc.sources)
			}
			for id, c := range res.streams {
				if sc.out != nil {
					sc.out.streams = append(sc.out.streams, c)
				}
				t.Logf("receiver %d source %v: %d messages, %d loss events (%d packets)", i, id, c.got, c.losses, c.lost)
				if sc.wantComplete && (c.got != sc.messages || c.losses != 0) {
					t.Errorf("receiver %d source %v: got %d of %d messages, %d loss events; first events: %q",
						i, id, c.got, sc.messages, c.losses, c.events)
				}
			}
		}
		for _, r := range rxs {
			st := r.Stats()
			t.Logf("receiver stats: NAKs %d in %d packets (%d parity), NCFs %d, repairs %d, FEC %d, dups %d, lost %d",
				st.NAKs, st.NAKPackets, st.ParityNAKs, st.NCFs, st.Repairs, st.FECRecovered, st.Duplicates, st.Lost)
			r.Close()
			if sc.out != nil {
				sc.out.receivers = append(sc.out.receivers, r.Stats())
			}
		}
		for _, snd := range snds {
			st := snd.Stats()
			t.Logf("sender stats: ODATA %d, RDATA %d (parity %d pro-active, %d on demand), NAKs %d, parity NAKs %d",
				st.ODATA, st.RDATA, st.ParityProactive, st.ParityOnDemand, st.NAKs, st.ParityNAKs)
			if sc.out != nil {
				sc.out.senders = append(sc.out.senders, st)
			}
		}
	})
}

func TestStackLoss(t *testing.T) {
	cfg := mcast.Config{Rate: 50_000_000, NAKRetries: 50}
	lat := mcasttest.NetworkConfig{Latency: time.Millisecond, QueueLen: 100000}
	for _, tc := range []struct {
		name   string
		impair mcasttest.Impairment
	}{
		{"0%", mcasttest.Impairment{}},
		{"1%", mcasttest.Impairment{Loss: 0.01}},
		{"10%", mcasttest.Impairment{Loss: 0.10}},
		{"30%", mcasttest.Impairment{Loss: 0.30}},
		{"burst", mcasttest.Impairment{BurstLoss: 0.01, BurstLen: 20}},
		{"reorder+dup", mcasttest.Impairment{Loss: 0.02, Reorder: 0.05, Duplicate: 0.05}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runStack(t, stackConfig{sources: 2, receivers: 3, messages: 1500, impair: tc.impair,
				net: lat, cfg: cfg, wantComplete: true})
		})
	}
}

// memPair starts a Receiver at 10.0.1.1, joined to group (its incoming
// datagrams dropped by drop, if not nil), and a Sender at 10.0.0.1 on nw,
// with rcfg and scfg and their Transport set. Both are the caller's to
// Close.
func memPair(t *testing.T, nw *mcasttest.Network, rcfg, scfg mcast.Config, drop func(mcasttest.Datagram) bool) (*mcast.Receiver, *mcast.Sender) {
	t.Helper()
	rep := nw.Endpoint(netip.MustParseAddr("10.0.1.1"), 0)
	rep.Join(group)
	if drop != nil {
		rep.SetDrop(drop)
	}
	rcfg.Transport = rep
	r, err := mcast.Listen(group, &rcfg)
	if err != nil {
		t.Fatal(err)
	}
	scfg.Transport = nw.Endpoint(netip.MustParseAddr("10.0.0.1"), group.Port())
	s, err := mcast.NewSender(group, &scfg)
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	return r, s
}

// dropSeq drops every ODATA and RDATA with sequence number seq.
func dropSeq(seq uint32) func(mcasttest.Datagram) bool {
	return func(d mcasttest.Datagram) bool {
		var p wire.Packet
		if wire.Parse(d.Buf[:d.N], &p) != nil {
			return false
		}
		return (p.Type == wire.TypeODATA || p.Type == wire.TypeRDATA) && p.Seq == seq
	}
}

// TestStackWindowPassed: a packet no receiver can get, while the sender's
// window moves past it, becomes a loss event exactly at the hole, and the
// stream goes on.
func TestStackWindowPassed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := mcasttest.NewNetwork(mcasttest.NetworkConfig{Latency: time.Millisecond})
		defer nw.Close()
		r, s := memPair(t, nw, mcast.Config{NAKRetries: 50}, mcast.Config{WindowPackets: 50}, dropSeq(10))
		defer r.Close()
		for i := range 200 {
			if err := s.Send(context.Background(), []byte(fmt.Sprintf("m%d", i))); err != nil {
				t.Fatal(err)
			}
		}
		s.Close()
		var ev mcast.Event
		var got []string
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			err := r.Read(ctx, &ev)
			cancel()
			if err != nil {
				t.Fatalf("after %d events: %v", len(got), err)
			}
			switch ev.Kind {
			case mcast.EventData:
				got = append(got, string(ev.Data))
			case mcast.EventLoss:
				got = append(got, fmt.Sprintf("loss %d-%d %v", ev.Seq, ev.LastSeq, ev.LossReason))
			}
			if ev.Kind == mcast.EventSourceGone {
				break
			}
		}
		if len(got) != 200 || got[9] != "m9" || got[10] != "loss 10-10 window-passed" || got[11] != "m11" {
			t.Fatalf("%d events around the hole: %q", len(got), got[8:13])
		}
	})
}

// TestStackSourceDies: a source that vanishes without FIN is reported
// gone within the expiry time.
func TestStackSourceDies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := mcasttest.NewNetwork(mcasttest.NetworkConfig{Latency: time.Millisecond})
		defer nw.Close()
		rep := nw.Endpoint(netip.MustParseAddr("10.0.1.1"), 0)
		rep.Join(group)
		const expiry = 3 * time.Second
		r, err := mcast.Listen(group, &mcast.Config{Transport: rep, SourceExpiry: expiry})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		sep := nw.Endpoint(netip.MustParseAddr("10.0.0.1"), group.Port())
		s, err := mcast.NewSender(group, &mcast.Config{Transport: sep, Linger: -1})
		if err != nil {
			t.Fatal(err)
		}
		s.Send(context.Background(), []byte("last words"))
		var ev mcast.Event
		for ev.Kind != mcast.EventData {
			if err := r.Read(context.Background(), &ev); err != nil {
				t.Fatal(err)
			}
		}
		nw.SetPartition(sep.LocalAddr(), rep.LocalAddr(), true) // the source is gone from the network
		died := time.Now()
		if err := r.Read(context.Background(), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Kind != mcast.EventSourceGone || ev.GoneReason != mcast.GoneExpired {
			t.Fatalf("got %v, want source gone (expired)", &ev)
		}
		if d := time.Since(died); d > expiry+time.Second {
			t.Fatalf("gone reported %v after the source died, expiry is %v", d, expiry)
		}
		s.Close()
	})
}

// TestStackRestart: a sender restarted with the same GSI on the same
// address is reported as a restart, after the old session's last event.
func TestStackRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := mcasttest.NewNetwork(mcasttest.NetworkConfig{Latency: time.Millisecond})
		defer nw.Close()
		rep := nw.Endpoint(netip.MustParseAddr("10.0.1.1"), 0)
		rep.Join(group)
		r, err := mcast.Listen(group, &mcast.Config{Transport: rep})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		gsi := [6]byte{9, 9, 9, 9, 9, 9}
		var ids []mcast.SourceID
		for round := range 2 {
			sep := nw.Endpoint(netip.MustParseAddr("10.0.0.1"), group.Port())
			s, err := mcast.NewSender(group, &mcast.Config{Transport: sep, GSI: gsi, Linger: -1})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, s.Source())
			s.Send(context.Background(), []byte(fmt.Sprintf("round %d", round)))
			time.Sleep(50 * time.Millisecond)
			sep.Close() // dies without FIN
			s.Close()
		}
		var kinds []string
		var ev mcast.Event
		for len(kinds) < 4 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			err := r.Read(ctx, &ev)
			cancel()
			if err != nil {
				t.Fatalf("%q: %v", kinds, err)
			}
			kinds = append(kinds, ev.String())
			if ev.Kind == mcast.EventSourceRestart && ev.Prev != ids[0] {
				t.Fatalf("restart names %v, want %v", ev.Prev, ids[0])
			}
		}
		want := []string{
			fmt.Sprintf("source new %v at 10.0.0.1", ids[0]),
			fmt.Sprintf("data from %v seq 0: 7 bytes", ids[0]),
			fmt.Sprintf("source restart %v at 10.0.0.1, was %v", ids[1], ids[0]),
			fmt.Sprintf("data from %v seq 0: 7 bytes", ids[1]),
		}
		if fmt.Sprint(kinds) != fmt.Sprint(want) {
			t.Fatalf("events %q\nwant %q", kinds, want)
		}
	})
}

func TestClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := mcasttest.NewNetwork(mcasttest.NetworkConfig{})
		defer nw.Close()
		rep := nw.Endpoint(netip.MustParseAddr("10.0.1.1"), 0)
		rep.Join(group)
		r, err := mcast.Listen(group, &mcast.Config{Transport: rep})
		if err != nil {
			t.Fatal(err)
		}
		s, err := mcast.NewSender(group, &mcast.Config{Transport: nw.Endpoint(netip.MustParseAddr("10.0.0.1"), group.Port())})
		if err != nil {
			t.Fatal(err)
		}
		readErr := make(chan error)
		go func() {
			var ev mcast.Event
			readErr <- r.Read(context.Background(), &ev) // source-new
			readErr <- r.Read(context.Background(), &ev) // blocks until Close
		}()
		s.Send(context.Background(), []byte("x"))
		if err := <-readErr; err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		r.Close()
		for _, err := range []error{<-readErr, r.Read(context.Background(), &mcast.Event{}), r.Close(), s.Close(),
			s.Send(context.Background(), []byte("late")), s.Close()} {
			if err != nil && !errors.Is(err, net.ErrClosed) {
				t.Errorf("%v does not wrap net.ErrClosed", err)
			}
		}
		if err := s.Send(context.Background(), nil); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Send after Close: %v", err)
		}
		if _, err := s.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Write after Close: %v", err)
		}
	})
}

func TestBadConfig(t *testing.T) {
	for _, tc := range []struct {
		group string
		cfg   mcast.Config
	}{
		{"10.0.0.1:7500", mcast.Config{}},
		{"239.1.1.1:0", mcast.Config{}},
		{"239.1.1.1:7500", mcast.Config{TTL: 300}},
		{"239.1.1.1:7500", mcast.Config{MTU: 100}},
	} {
		if _, err := mcast.Listen(netip.MustParseAddrPort(tc.group), &tc.cfg); err == nil {
			t.Errorf("Listen(%s, %+v) succeeded", tc.group, tc.cfg)
		}
		if _, err := mcast.NewSender(netip.MustParseAddrPort(tc.group), &tc.cfg); err == nil {
			t.Errorf("NewSender(%s, %+v) succeeded", tc.group, tc.cfg)
		}
	}
}
