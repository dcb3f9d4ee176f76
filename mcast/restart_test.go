package mcast_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/relmcast/relmcast/internal/wire"
	"github.com/relmcast/relmcast/mcast"
	"github.com/relmcast/relmcast/mcast/mcasttest"
)

// TestStackRestartSameTSIAfterFIN: a sender closes cleanly (FIN) and is
// started again 100 ms later with the same GSI and source port, so the
// same TSI, and a new random first sequence number; the receiver loses
// every SPM of the second session but its FIN SPMs. The second session
// is reported as a restart of the first (not dropped as the first's late
// packets), and all of both is delivered in order, never mixed.
func TestStackRestartSameTSIAfterFIN(t *testing.T) {
	*mcast.ZeroFirstSeq = false
	defer func() { *mcast.ZeroFirstSeq = true }()
	group := netip.MustParseAddrPort("239.192.0.9:7500")
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
		gsi := [6]byte{9, 9, 9, 9, 9, 8}
		var ids []mcast.SourceID
		for round := range 2 {
			if round == 1 {
				rep.SetDrop(func(d mcasttest.Datagram) bool {
					var p wire.Packet
					return wire.Parse(d.Buf[:d.N], &p) == nil && p.Type == wire.TypeSPM && !p.FIN
				})
			}
			sep := nw.Endpoint(netip.MustParseAddr("10.0.0.1"), group.Port())
			s, err := mcast.NewSender(group, &mcast.Config{Transport: sep, GSI: gsi, SourcePort: 4000, Linger: 50 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, s.Source())
			for i := range 5 {
				if err := s.Send(context.Background(), []byte(fmt.Sprintf("r%d m%d", round, i))); err != nil {
					t.Fatal(err)
				}
			}
			s.Close()
			sep.Close()
			time.Sleep(100 * time.Millisecond)
		}
		if ids[0] != ids[1] {
			t.Fatalf("TSIs %v and %v differ", ids[0], ids[1])
		}
		var got []string
		var ev mcast.Event
		for len(got) < 13 {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := r.Read(ctx, &ev)
			cancel()
			if err != nil {
				t.Fatalf("%q: %v", got, err)
			}
			switch ev.Kind {
			case mcast.EventData:
				got = append(got, string(ev.Data))
			case mcast.EventSourceRestart:
				if ev.Prev != ids[0] || ev.Source != ids[0] {
					t.Fatalf("restart %v", &ev)
				}
				got = append(got, "restart")
			default:
				got = append(got, ev.Kind.String())
			}
		}
		want := "source-new r0 m0 r0 m1 r0 m2 r0 m3 r0 m4 source-gone restart r1 m0 r1 m1 r1 m2 r1 m3 r1 m4"
		if strings.Join(got, " ") != want {
			t.Fatalf("events %q\nwant %q", strings.Join(got, " "), want)
		}
	})
}
