package mcast_test

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/relmcast/relmcast/mcast"
	"github.com/relmcast/relmcast/mcast/mcasttest"
)

// A sender and a receiver on an in-memory network that loses 20% of what
// the receiver gets: every message still arrives, in order.
func Example() {
	group := netip.MustParseAddrPort("239.192.0.1:7500")
	nw := mcasttest.NewNetwork(mcasttest.NetworkConfig{Latency: time.Millisecond})
	defer nw.Close()

	rep := nw.Endpoint(netip.MustParseAddr("10.0.0.2"), 0)
	rep.Join(group)
	rep.SetImpairment(mcasttest.Impairment{Loss: 0.2, Seed: 1})
	r, err := mcast.Listen(group, &mcast.Config{Transport: rep})
	if err != nil {
		panic(err)
	}
	defer r.Close()

	s, err := mcast.NewSender(group, &mcast.Config{
		Transport: nw.Endpoint(netip.MustParseAddr("10.0.0.1"), group.Port()),
		Linger:    200 * time.Millisecond,
	})
	if err != nil {
		panic(err)
	}
	for i := range 5 {
		s.Send(context.Background(), fmt.Appendf(nil, "message %d", i))
	}
	closed := make(chan error)
	go func() { closed <- s.Close() }() // FIN once everything is out, then linger for repairs
	defer func() { <-closed }()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var ev mcast.Event
	for r.Read(ctx, &ev) == nil && ev.Kind != mcast.EventSourceGone {
		switch ev.Kind {
		case mcast.EventData:
			fmt.Printf("%s\n", ev.Data)
		case mcast.EventLoss:
			fmt.Println("lost:", &ev)
		}
	}
	// Output:
	// message 0
	// message 1
	// message 2
	// message 3
	// message 4
}
