package mcasttest_test

import (
	"fmt"
	"net/netip"

	"github.com/relmcast/relmcast/mcast/mcasttest"
)

func Example() {
	net := mcasttest.NewNetwork(mcasttest.NetworkConfig{Seed: 1})
	defer net.Close()

	group := netip.MustParseAddrPort("239.192.0.1:7500")
	sender := net.Endpoint(netip.MustParseAddr("198.18.0.1"), 7500)
	alice := net.Endpoint(netip.MustParseAddr("198.18.0.2"), 7500)
	bob := net.Endpoint(netip.MustParseAddr("198.18.0.3"), 7500)
	alice.Join(group)
	bob.Join(group)
	// Bob's link drops every datagram: a one-line way to test loss.
	bob.SetImpairment(mcasttest.Impairment{Loss: 1})

	msg := []byte("hello, group")
	if _, err := sender.WriteBatch([]mcasttest.Datagram{{Buf: msg, N: len(msg), Addr: group}}); err != nil {
		panic(err)
	}

	ds := []mcasttest.Datagram{{Buf: make([]byte, 1500)}}
	n, err := alice.ReadBatch(ds) // would block if nothing had arrived
	if err != nil {
		panic(err)
	}
	d := ds[0]
	fmt.Printf("alice got %d: %q from %v to %v\n", n, d.Buf[:d.N], d.Addr, d.Dst)
	fmt.Printf("bob: %+v\n", bob.Stats().DroppedImpairment)
	// Output:
	// alice got 1: "hello, group" from 198.18.0.1:7500 to 239.192.0.1
	// bob: 1
}
