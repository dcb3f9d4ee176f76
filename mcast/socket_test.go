package mcast_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/relmcast/relmcast/internal/lossy"
	"github.com/relmcast/relmcast/mcast"
)

// inNetns skips tests that open sockets unless they run inside the private
// network namespace of scripts/netns: no packet may reach a real network.
func inNetns(t *testing.T) {
	t.Helper()
	if os.Getenv("RELMCAST_NETNS") != "1" {
		t.Skip("opens sockets: run inside scripts/netns")
	}
}

func randomPort() uint16 { return uint16(20000 + rand.IntN(20000)) }

// runSockets sends messages from senders (one per address) to receivers
// over real multicast sockets, with seeded loss injected on the receivers,
// and checks every stream is complete and in order.
func runSockets(t *testing.T, group netip.AddrPort, ifi *net.Interface, senders []netip.Addr, receivers, messages int, loss float64) {
	// Paced so that -race on two cores keeps up: this tests correctness, not speed.
	cfg := mcast.Config{Interface: ifi, NAKRetries: 50, Linger: 3 * time.Second, Rate: 20_000_000}
	var rxs []*mcast.Receiver
	for i := range receivers {
		c := cfg
		c.Seed = uint64(i + 1)
		if loss > 0 {
			lc := lossy.Config{Loss: loss, Seed: uint64(i + 1)}
			c.WrapTransport = func(tr mcast.Transport) mcast.Transport { return lossy.Wrap(tr, lc) }
		}
		r, err := mcast.Listen(group, &c)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		rxs = append(rxs, r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	errs := make(chan error, len(senders)+len(rxs))
	for si, addr := range senders {
		c := cfg
		c.Addr = addr
		s, err := mcast.NewSender(group, &c)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for i := range messages {
				if err := s.Send(ctx, makeMsg(byte(si), i)); err != nil {
					errs <- err
					return
				}
			}
			err := s.Close()
			st := s.Stats()
			t.Logf("sender %v: ODATA %d RDATA %d NCF %d NAKs %d seqs %d bad %d elim %d outside %d ncfdrop %d",
				addr, st.ODATA, st.RDATA, st.NCF, st.NAKs, st.NAKSeqs, st.BadNAKs, st.NAKsEliminated, st.NAKsOutsideWindow, st.NCFsDropped)
			errs <- err
		}()
	}
	for ri, r := range rxs {
		go func() {
			streams := map[mcast.SourceID]*streamCheck{}
			var ev mcast.Event
			for gone := 0; gone < len(senders); {
				if err := r.Read(ctx, &ev); err != nil {
					errs <- fmt.Errorf("receiver %d: %w (streams %d)", ri, err, len(streams))
					return
				}
				c := streams[ev.Source]
				if c == nil {
					c = &streamCheck{}
					streams[ev.Source] = c
				}
				if err := c.event(&ev); err != nil {
					errs <- fmt.Errorf("receiver %d: %w", ri, err)
					return
				}
				if ev.Kind == mcast.EventSourceGone {
					gone++
					if c.got != messages || c.losses != 0 {
						errs <- fmt.Errorf("receiver %d source %v: %d of %d messages, %d losses: %q",
							ri, ev.Source, c.got, messages, c.losses, c.events)
						return
					}
				}
			}
			st := r.Stats()
			t.Logf("receiver %d: %d messages, NAKs %d, repairs %d", ri, st.Messages, st.NAKs, st.Repairs)
			errs <- nil
		}()
	}
	for range len(senders) + len(rxs) {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func TestSocketsIPv4(t *testing.T) {
	inNetns(t)
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	group := netip.AddrPortFrom(netip.MustParseAddr("239.192.0.1"), randomPort())
	senders := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")}
	runSockets(t, group, lo, senders, 3, 3000, 0.05)
}

func TestSocketsIPv6(t *testing.T) {
	inNetns(t)
	v0, err := net.InterfaceByName("v0")
	if err != nil {
		t.Skipf("no veth v0 (IPv6 multicast is not looped on lo): %v", err)
	}
	group := netip.AddrPortFrom(netip.MustParseAddr("ff02::1:3"), randomPort())
	runSockets(t, group, v0, []netip.Addr{{}}, 2, 2000, 0.05)
}

// Stats report the socket layer's offloads: in use by default on Linux
// (UDP GSO since 4.18, GRO since 5.0), off with Config.NoGSO and NoGRO.
func TestSocketOffloadStats(t *testing.T) {
	inNetns(t)
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []bool{false, true} {
		t.Run(fmt.Sprintf("NoGSO=NoGRO=%v", off), func(t *testing.T) {
			group := netip.AddrPortFrom(netip.MustParseAddr("239.192.0.1"), randomPort())
			cfg := mcast.Config{Interface: lo, Rate: -1, Linger: -1, NoGSO: off, NoGRO: off}
			r, err := mcast.Listen(group, &cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			s, err := mcast.NewSender(group, &cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			const n = 2000
			msg := make([]byte, 1000)
			for range n {
				if err := s.Send(ctx, msg); err != nil {
					t.Fatal(err)
				}
			}
			var ev mcast.Event
			for got := 0; got < n; {
				if err := r.Read(ctx, &ev); err != nil {
					t.Fatalf("after %d messages: %v", got, err)
				}
				if ev.Kind == mcast.EventData {
					got++
				}
			}
			so, ro := s.Stats().Offload, r.Stats().Offload
			t.Logf("sender %+v, receiver %+v", so, ro)
			want := !off && runtime.GOOS == "linux"
			if so.GSO != want || ro.GRO != want {
				t.Errorf("GSO %v, GRO %v: want %v", so.GSO, ro.GRO, want)
			}
			// Unlimited, 2000 messages go out in runs: GSO, when on, is used.
			if so.GSO && so.GSOWrites == 0 {
				t.Errorf("GSO on, yet no GSO write")
			}
			if off && (so.GSOWrites != 0 || ro.GROReads != 0) {
				t.Errorf("offload off, yet %d GSO writes, %d GRO reads", so.GSOWrites, ro.GROReads)
			}
		})
	}
}
