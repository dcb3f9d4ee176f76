package mcast_test

// Hardening (issue 6): slow receivers, restarts with the same TSI, and
// the errors of bad configurations and interfaces.

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/relmcast/relmcast/mcast"
	"github.com/relmcast/relmcast/mcast/mcasttest"
)

// TestHardeningSlowReceiver: one receiver's application stops reading.
// Its memory stays bounded (the event queue, then the receive window),
// what overflows becomes overrun loss in its stream, never silence; and
// neither the sender nor the other receiver is held back by it.
func TestHardeningSlowReceiver(t *testing.T) {
	const n = 20000
	synctest.Test(t, func(t *testing.T) {
		nw := mcasttest.NewNetwork(mcasttest.NetworkConfig{Latency: time.Millisecond})
		defer nw.Close()
		listen := func(i byte) *mcast.Receiver {
			ep := nw.Endpoint(netip.AddrFrom4([4]byte{10, 0, 1, i}), 0)
			ep.Join(group)
			r, err := mcast.Listen(group, &mcast.Config{Transport: ep, ReceiveWindow: 1024, Queue: 64, Seed: uint64(i)})
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		fast, slow := listen(1), listen(2)
		defer fast.Close()
		defer slow.Close()
		fastDone := make(chan *streamCheck)
		go func() {
			c := &streamCheck{}
			var ev mcast.Event
			for !c.gone {
				if err := fast.Read(context.Background(), &ev); err != nil {
					t.Error(err)
					break
				}
				if err := c.event(&ev); err != nil {
					t.Error(err)
					break
				}
			}
			fastDone <- c
		}()
		s, err := mcast.NewSender(group, &mcast.Config{Transport: nw.Endpoint(netip.MustParseAddr("10.0.0.1"), group.Port()),
			WindowPackets: 2048, Linger: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		start := time.Now()
		var bytes int
		for i := range n {
			msg := makeMsg(0, i)
			bytes += len(msg)
			if err := s.Send(context.Background(), msg); err != nil {
				t.Fatal(err)
			}
		}
		for s.Stats().Messages < n {
			time.Sleep(time.Millisecond)
		}
		elapsed := time.Since(start)
		runtime.GC()
		runtime.ReadMemStats(&m1)
		s.Close()
		// The default rate, 100 Mbit/s, headers included: the sender was
		// not slowed down by the receiver that does not read.
		if want := time.Duration(float64(bytes) * 1.1 / (mcast.DefaultRate / 8) * float64(time.Second)); elapsed > want {
			t.Errorf("%d messages (%d bytes) took %v, more than %v at the default rate", n, bytes, elapsed, want)
		}
		t.Logf("sent %d messages, %d bytes, in %v; heap in use %d KiB -> %d KiB while one receiver did not read",
			n, bytes, elapsed, m0.HeapInuse>>10, m1.HeapInuse>>10)
		c := <-fastDone
		if c.got != n || c.losses != 0 {
			t.Errorf("the reading receiver got %d of %d messages, %d losses", c.got, n, c.losses)
		}
		t.Log("# the slow application reads again: what overflowed is overrun loss, in place")
		c = &streamCheck{}
		reasons := map[mcast.LossReason]int{}
		var ev mcast.Event
		for !c.gone {
			if err := slow.Read(context.Background(), &ev); err != nil {
				t.Fatal(err)
			}
			if err := c.event(&ev); err != nil {
				t.Fatal(err)
			}
			if ev.Kind == mcast.EventLoss {
				reasons[ev.LossReason]++
			}
		}
		st := slow.Stats()
		t.Logf("the receiver that did not read: %d messages, %d loss events (%d packets) %v", c.got, c.losses, c.lost, reasons)
		if c.losses == 0 || len(reasons) != 1 || reasons[mcast.LossOverrun] == 0 || c.got+int(c.lost) < n || st.Lost != c.lost {
			t.Errorf("got %d, lost %d in %v; stats %+v", c.got, c.lost, reasons, st)
		}
		// What it held while it did not read: its queue and its window.
		if c.got > 64+1024+3 {
			t.Errorf("%d messages kept for a receiver with a queue of 64 and a window of 1024", c.got)
		}
	})
}

// TestHardeningRestartSameTSI: a sender restarted with the same GSI and
// port (the same TSI: OpenPGM and ZeroMQ applications with a fixed port)
// numbers everything from 0 again. Receivers report a restart of the
// TSI, and the new session's messages are never taken for the old one's.
func TestHardeningRestartSameTSI(t *testing.T) {
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
		var id mcast.SourceID
		for round := range 2 {
			sep := nw.Endpoint(netip.MustParseAddr("10.0.0.1"), group.Port())
			s, err := mcast.NewSender(group, &mcast.Config{Transport: sep, GSI: [6]byte{9, 9, 9, 9, 9, 9},
				SourcePort: 4242, Linger: -1})
			if err != nil {
				t.Fatal(err)
			}
			id = s.Source()
			for i := range 3 + round {
				s.Send(context.Background(), fmt.Appendf(nil, "round %d message %d", round, i))
			}
			time.Sleep(50 * time.Millisecond)
			sep.Close() // dies without FIN
			s.Close()
		}
		var got []string
		var ev mcast.Event
		for len(got) < 9 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			err := r.Read(ctx, &ev)
			cancel()
			if err != nil {
				t.Fatalf("%q: %v", got, err)
			}
			switch ev.Kind {
			case mcast.EventData:
				got = append(got, string(ev.Data))
			case mcast.EventSourceRestart:
				if ev.Prev != id || ev.Source != id {
					t.Fatalf("restart of %v as %v, want %v", ev.Prev, ev.Source, id)
				}
				got = append(got, "restart")
			default:
				got = append(got, ev.Kind.String())
			}
		}
		want := "source-new|round 0 message 0|round 0 message 1|round 0 message 2|restart|" +
			"round 1 message 0|round 1 message 1|round 1 message 2|round 1 message 3"
		if strings.Join(got, "|") != want {
			t.Fatalf("events\n%s\nwant\n%s", strings.Join(got, "|"), want)
		}
	})
}

// TestHardeningBadConfig: each bad setting is refused with a message that
// names it and says what to write instead.
func TestHardeningBadConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  mcast.Config
		want string
	}{
		{mcast.Config{TTL: -1}, "TTL -1: want 0..255"},
		{mcast.Config{MTU: 100}, "MTU 100: want 576..65535"},
		{mcast.Config{WindowPackets: -1}, "Config.WindowPackets -1 is negative: want 0 (the default) or more"},
		{mcast.Config{WindowBytes: -5}, "Config.WindowBytes -5 is negative"},
		{mcast.Config{WindowTime: -time.Second}, "Config.WindowTime -1s is negative: want 0 (the default, 10s) or more"},
		{mcast.Config{ReceiveWindow: -1}, "Config.ReceiveWindow -1 is negative"},
		{mcast.Config{Queue: -1}, "Config.Queue -1 is negative"},
		{mcast.Config{MaxSources: -1}, "Config.MaxSources -1 is negative"},
		{mcast.Config{NAKRetries: -1}, "Config.NAKRetries -1 is negative"},
		{mcast.Config{NAKRetries: 300}, "NAKRetries 300: want at most 255"},
	} {
		_, err := mcast.Listen(group, &tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Listen(%+v): %v; want %q", tc.cfg, err, tc.want)
		}
		_, err = mcast.NewSender(group, &tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewSender(%+v): %v; want %q", tc.cfg, err, tc.want)
		}
	}
	for _, g := range []string{"10.0.0.1:7500", "239.1.1.1:0"} {
		_, err := mcast.Listen(netip.MustParseAddrPort(g), nil)
		if err == nil || !strings.Contains(err.Error(), g[:strings.LastIndex(g, ":")]) {
			t.Errorf("Listen(%s): %v", g, err)
		}
	}
}

// TestHardeningInterfaceErrors: an interface that has gone since it was
// looked up, or that cannot carry the group, fails Listen and NewSender
// with an error naming the interface and the group.
func TestHardeningInterfaceErrors(t *testing.T) {
	inNetns(t)
	g := netip.AddrPortFrom(netip.MustParseAddr("239.192.0.1"), randomPort())
	gone := &net.Interface{Index: 99999, Name: "gone0", MTU: 1500, Flags: net.FlagUp | net.FlagMulticast}
	check := func(what string, err error, ifname string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), ifname) || !strings.Contains(err.Error(), g.String()) {
			t.Errorf("%s: %v; want an error naming %s and %v", what, err, ifname, g)
		}
		t.Logf("%s: %v", what, err)
	}
	_, err := mcast.Listen(g, &mcast.Config{Interface: gone})
	check("Listen on a gone interface", err, "gone0")
	_, err = mcast.NewSender(g, &mcast.Config{Interface: gone, Addr: netip.MustParseAddr("127.0.0.1")})
	check("NewSender on a gone interface", err, "gone0")
	if v0, err := net.InterfaceByName("v0"); err == nil { // scripts/netns: IPv6 link-local only
		_, err = mcast.NewSender(g, &mcast.Config{Interface: v0})
		check("NewSender on an interface without IPv4", err, "v0")
	}
}
