package mcasttest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"
	"testing"
	"testing/synctest"
)

var (
	group  = netip.MustParseAddrPort("239.192.0.1:7500")
	group2 = netip.MustParseAddrPort("239.192.0.2:7500")
	h1     = netip.MustParseAddr("198.18.0.1")
	h2     = netip.MustParseAddr("198.18.0.2")
	h3     = netip.MustParseAddr("198.18.0.3")
	h4     = netip.MustParseAddr("198.18.0.4")
)

// rec is a received datagram, copied out of the read buffer.
type rec struct {
	data string
	src  netip.AddrPort
	dst  netip.Addr
}

// send writes each payload to dst in one WriteBatch, reusing a single
// buffer per datagram to prove the network copies.
func send(t testing.TB, e *Endpoint, dst netip.AddrPort, payloads ...string) {
	t.Helper()
	ds := make([]Datagram, len(payloads))
	for i, p := range payloads {
		ds[i] = Datagram{Buf: []byte(p), N: len(p), Addr: dst}
	}
	n, err := e.WriteBatch(ds)
	if n != len(ds) || err != nil {
		t.Fatalf("WriteBatch = %d, %v", n, err)
	}
	for _, d := range ds { // scribble: receivers must hold copies
		for i := range d.Buf {
			d.Buf[i] = '#'
		}
	}
}

// sendSeq writes datagrams numbered from..to-1 (4-byte big-endian) to dst,
// one WriteBatch of up to 64 at a time.
func sendSeq(t testing.TB, e *Endpoint, dst netip.AddrPort, from, to int) {
	t.Helper()
	var ds []Datagram
	flush := func() {
		if n, err := e.WriteBatch(ds); n != len(ds) || err != nil {
			t.Fatalf("WriteBatch = %d, %v", n, err)
		}
		ds = ds[:0]
	}
	for i := from; i < to; i++ {
		b := binary.BigEndian.AppendUint32(nil, uint32(i))
		ds = append(ds, Datagram{Buf: b, N: 4, Addr: dst})
		if len(ds) == 64 {
			flush()
		}
	}
	flush()
}

// queued returns everything queued at e without blocking.
func queued(t testing.TB, e *Endpoint) []rec {
	t.Helper()
	var out []rec
	ds := make([]Datagram, 7)
	for i := range ds {
		ds[i].Buf = make([]byte, 2048)
	}
	for len(e.q) > 0 {
		n, err := e.ReadBatch(ds)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds[:n] {
			out = append(out, rec{string(d.Buf[:d.N]), d.Addr, d.Dst})
		}
	}
	return out
}

func seqs(rs []rec) []int {
	var out []int
	for _, r := range rs {
		out = append(out, int(binary.BigEndian.Uint32([]byte(r.data))))
	}
	return out
}

func TestMulticastFanout(t *testing.T) {
	n := NewNetwork(NetworkConfig{})
	defer n.Close()
	sender := n.Endpoint(h1, 7500)
	var rcv []*Endpoint
	for _, h := range []netip.Addr{h2, h3, h4} {
		e := n.Endpoint(h, 7500)
		e.Join(group)
		e.Join(group) // twice is once
		rcv = append(rcv, e)
	}
	other := n.Endpoint(h4, 9000)
	other.Join(group2)

	send(t, sender, group, "one", "two", "three")
	want := []rec{
		{"one", sender.AddrPort(), group.Addr()},
		{"two", sender.AddrPort(), group.Addr()},
		{"three", sender.AddrPort(), group.Addr()},
	}
	for i, e := range rcv {
		if got := queued(t, e); !slices.Equal(got, want) {
			t.Errorf("receiver %d got %v, want %v", i, got, want)
		}
		if st := e.Stats(); st.Received != 3 || st.Dropped != 0 {
			t.Errorf("receiver %d stats %+v", i, st)
		}
	}
	if got := queued(t, sender); len(got) != 0 {
		t.Errorf("sender that did not join got its own datagrams: %v", got)
	}
	if got := queued(t, other); len(got) != 0 {
		t.Errorf("member of another group got %v", got)
	}
	if st := sender.Stats(); st.Sent != 3 {
		t.Errorf("sender stats %+v", st)
	}

	// Joining is multicast loop: now the sender hears itself.
	sender.Join(group)
	send(t, sender, group, "loop")
	if got := queued(t, sender); len(got) != 1 || got[0].data != "loop" {
		t.Errorf("joined sender got %v, want its own datagram", got)
	}
	for _, e := range rcv {
		queued(t, e)
	}

	// After Leave, no more.
	rcv[0].Leave(group)
	send(t, sender, group, "after")
	if got := queued(t, rcv[0]); len(got) != 0 {
		t.Errorf("left receiver got %v", got)
	}
	if got := queued(t, rcv[1]); len(got) != 1 {
		t.Errorf("receiver 1 got %v", got)
	}
}

func TestUnicast(t *testing.T) {
	n := NewNetwork(NetworkConfig{})
	defer n.Close()
	a := n.Endpoint(h1, 7500)
	b := n.Endpoint(h2, 7500)
	b.Join(group) // membership does not matter for unicast

	send(t, a, netip.AddrPortFrom(h2, 7500), "nak")
	want := []rec{{"nak", a.AddrPort(), h2}}
	if got := queued(t, b); !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	send(t, a, netip.AddrPortFrom(h2, 7501), "wrong port")
	send(t, a, netip.AddrPortFrom(h3, 7500), "no such host")
	send(t, a, netip.AddrPort{}, "invalid")
	if got := queued(t, b); len(got) != 0 {
		t.Errorf("got %v", got)
	}
	if st := n.Stats(); st.Unroutable != 3 {
		t.Errorf("network stats %+v, want 3 unroutable", st)
	}
	// To itself.
	send(t, a, a.AddrPort(), "self")
	if got := queued(t, a); len(got) != 1 || got[0].dst != h1 {
		t.Errorf("unicast to self: %v", got)
	}
	// IPv4-mapped IPv6 destinations reach the IPv4 endpoint.
	send(t, a, netip.AddrPortFrom(netip.AddrFrom16(h2.As16()), 7500), "mapped")
	if got := queued(t, b); len(got) != 1 || got[0].dst != h2 {
		t.Errorf("mapped destination: %v", got)
	}
}

func TestSharedPortAndEphemeral(t *testing.T) {
	n := NewNetwork(NetworkConfig{})
	defer n.Close()
	first := n.Endpoint(h1, 7500)
	second := n.Endpoint(h1, 7500)
	x := n.Endpoint(h2, 0)
	y := n.Endpoint(h2, 0)
	if x.AddrPort().Port() != 49152 || y.AddrPort().Port() != 49153 {
		t.Errorf("ephemeral ports %v %v", x.AddrPort(), y.AddrPort())
	}
	send(t, x, netip.AddrPortFrom(h1, 7500), "to oldest")
	if got := queued(t, first); len(got) != 1 {
		t.Errorf("oldest got %v", got)
	}
	if got := queued(t, second); len(got) != 0 {
		t.Errorf("second got %v", got)
	}
	first.Close()
	send(t, x, netip.AddrPortFrom(h1, 7500), "now second")
	if got := queued(t, second); len(got) != 1 {
		t.Errorf("after closing the oldest, second got %v", got)
	}
}

func TestMTU(t *testing.T) {
	n := NewNetwork(NetworkConfig{MTU: 100})
	defer n.Close()
	a, b := n.Endpoint(h1, 1), n.Endpoint(h2, 1)
	b.Join(group)
	send(t, a, group, string(make([]byte, 100)), string(make([]byte, 101)), "small")
	got := queued(t, b)
	if len(got) != 2 || len(got[0].data) != 100 || got[1].data != "small" {
		t.Errorf("got %d datagrams: %v", len(got), got)
	}
	if st := a.Stats(); st.DroppedMTU != 1 || st.Dropped != 1 || st.Sent != 3 {
		t.Errorf("sender stats %+v", st)
	}
	if def := NewNetwork(NetworkConfig{}).Config(); def.MTU != 1500 || def.QueueLen != 4096 {
		t.Errorf("defaults %+v", def)
	}
}

func TestQueueOverflow(t *testing.T) {
	n := NewNetwork(NetworkConfig{QueueLen: 4})
	defer n.Close()
	a, b := n.Endpoint(h1, 1), n.Endpoint(h2, 1)
	b.Join(group)
	sendSeq(t, a, group, 0, 10)
	if got := seqs(queued(t, b)); !slices.Equal(got, []int{0, 1, 2, 3}) {
		t.Errorf("got %v, want the first 4", got)
	}
	if st := b.Stats(); st.DroppedQueue != 6 || st.Dropped != 6 || st.Received != 4 {
		t.Errorf("stats %+v, want 6 queue drops", st)
	}
	sendSeq(t, a, group, 10, 12) // room again
	if got := seqs(queued(t, b)); !slices.Equal(got, []int{10, 11}) {
		t.Errorf("after reading, got %v", got)
	}
}

func TestTruncation(t *testing.T) {
	n := NewNetwork(NetworkConfig{})
	defer n.Close()
	a, b := n.Endpoint(h1, 1), n.Endpoint(h2, 1)
	send(t, a, b.AddrPort(), "0123456789")
	ds := []Datagram{{Buf: make([]byte, 4)}}
	if n, err := b.ReadBatch(ds); n != 1 || err != nil || string(ds[0].Buf[:ds[0].N]) != "0123" {
		t.Errorf("ReadBatch = %d, %v, %q", n, err, ds[0].Buf[:ds[0].N])
	}
	if st := b.Stats(); st.Truncated != 1 {
		t.Errorf("stats %+v", st)
	}
	if n, err := b.ReadBatch(nil); n != 0 || err != nil {
		t.Errorf("ReadBatch(nil) = %d, %v", n, err)
	}
}

func TestClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := NewNetwork(NetworkConfig{})
		defer n.Close()
		a, b := n.Endpoint(h1, 1), n.Endpoint(h2, 1)
		b.Join(group)

		errc := make(chan error, 1)
		go func() {
			_, err := b.ReadBatch(make([]Datagram, 4))
			errc <- err
		}()
		synctest.Wait() // the reader is durably blocked
		select {
		case err := <-errc:
			t.Fatalf("ReadBatch returned early: %v", err)
		default:
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; !errors.Is(err, net.ErrClosed) {
			t.Errorf("blocked ReadBatch after Close: %v, want net.ErrClosed", err)
		}
		if err := b.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		ds := []Datagram{{Buf: make([]byte, 10), N: 1, Addr: group}}
		if _, err := b.ReadBatch(ds); !errors.Is(err, net.ErrClosed) {
			t.Errorf("ReadBatch after Close: %v", err)
		}
		if _, err := b.WriteBatch(ds); !errors.Is(err, net.ErrClosed) {
			t.Errorf("WriteBatch after Close: %v", err)
		}
		// The closed endpoint left the group; sending to it still works.
		send(t, a, group, "x")
		send(t, a, b.AddrPort(), "y")
		if st := n.Stats(); st.Unroutable != 1 {
			t.Errorf("network stats %+v", st)
		}

		n.Close()
		if _, err := a.WriteBatch(ds); !errors.Is(err, net.ErrClosed) {
			t.Errorf("WriteBatch after Network.Close: %v", err)
		}
		defer func() {
			if recover() == nil {
				t.Error("Endpoint on a closed Network did not panic")
			}
		}()
		n.Endpoint(h3, 1)
	})
}

func TestLossRate(t *testing.T) {
	const count, p = 10_000, 0.1
	run := func(seed uint64) (map[string][]int, map[string]EndpointStats) {
		n := NewNetwork(NetworkConfig{QueueLen: count, Seed: seed})
		defer n.Close()
		a := n.Endpoint(h1, 1)
		got, stats := map[string][]int{}, map[string]EndpointStats{}
		var rcv []*Endpoint
		for _, h := range []netip.Addr{h2, h3} {
			e := n.Endpoint(h, 1)
			e.Join(group)
			e.SetImpairment(Impairment{Loss: p, Seed: 1}) // same config on both
			rcv = append(rcv, e)
		}
		sendSeq(t, a, group, 0, count)
		for _, e := range rcv {
			got[e.LocalAddr().String()] = seqs(queued(t, e))
			stats[e.LocalAddr().String()] = e.Stats()
		}
		return got, stats
	}
	got, stats := run(1)
	mean, sd := count*(1-p), math.Sqrt(count*p*(1-p))
	for h, st := range stats {
		if st.Received+st.DroppedImpairment != count || st.Received != uint64(len(got[h])) {
			t.Errorf("%s: stats %+v, read %d", h, st, len(got[h]))
		}
		if d := math.Abs(float64(st.Received) - mean); d > 5*sd {
			t.Errorf("%s: received %d of %d at loss %v, want %.0f ± %.0f", h, st.Received, count, p, mean, 5*sd)
		}
		if !slices.IsSorted(got[h]) {
			t.Errorf("%s: loss alone reordered datagrams", h)
		}
	}
	// Same Impairment, different endpoints: independent decisions.
	if slices.Equal(got[h2.String()], got[h3.String()]) {
		t.Error("two endpoints lost exactly the same datagrams")
	}
	// Reproducible: the same run loses the same datagrams.
	again, stats2 := run(1)
	for h := range got {
		if !slices.Equal(got[h], again[h]) || stats[h] != stats2[h] {
			t.Errorf("%s: second run differs: %d vs %d received", h, len(got[h]), len(again[h]))
		}
	}
	// The network seed changes them.
	other, _ := run(2)
	if slices.Equal(got[h2.String()], other[h2.String()]) {
		t.Error("a different network Seed lost the same datagrams")
	}
	t.Logf("received %d and %d of %d at loss %v", stats[h2.String()].Received, stats[h3.String()].Received, count, p)
}

func TestBurstLoss(t *testing.T) {
	n := NewNetwork(NetworkConfig{QueueLen: 10_000})
	defer n.Close()
	a, b := n.Endpoint(h1, 1), n.Endpoint(h2, 1)
	b.Join(group)
	b.SetImpairment(Impairment{BurstLoss: 0.01, BurstLen: 8, Seed: 3})
	sendSeq(t, a, group, 0, 10_000)
	got := seqs(queued(t, b))
	for i := 1; i < len(got); i++ {
		if gap := got[i] - got[i-1] - 1; gap%8 != 0 {
			t.Fatalf("gap of %d between %d and %d, want whole bursts of 8", gap, got[i-1], got[i])
		}
	}
	if st := b.Stats(); st.DroppedImpairment == 0 || st.DroppedImpairment%8 != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestReorderAndDuplicate(t *testing.T) {
	n := NewNetwork(NetworkConfig{QueueLen: 10_000})
	defer n.Close()
	a, b := n.Endpoint(h1, 1), n.Endpoint(h2, 1)
	b.Join(group)
	b.SetImpairment(Impairment{Reorder: 0.1, Duplicate: 0.1, Seed: 5})
	sendSeq(t, a, group, 0, 5000)
	b.SetImpairment(Impairment{}) // releases the datagrams still held back
	got := seqs(queued(t, b))

	count := map[int]int{}
	inversions := 0
	for i, s := range got {
		count[s]++
		if i > 0 && s < got[i-1] {
			inversions++
		}
	}
	dups := 0
	for s := range 5000 {
		if count[s] == 0 {
			t.Fatalf("datagram %d lost without loss configured", s)
		}
		dups += count[s] - 1
	}
	st := b.Stats()
	if inversions == 0 || st.Reordered == 0 {
		t.Errorf("no reordering observed (%d inversions, stats %+v)", inversions, st)
	}
	if dups == 0 || uint64(dups) != st.Duplicated {
		t.Errorf("observed %d duplicates, stats %+v", dups, st)
	}
	if st.Received != 5000+st.Duplicated {
		t.Errorf("stats %+v", st)
	}
	t.Logf("%d inversions, %d duplicates, stats %+v", inversions, dups, st)
}

// A fixed seed and a single writer give the same deliveries every run.
func TestDeterministic(t *testing.T) {
	run := func() string {
		n := NewNetwork(NetworkConfig{Seed: 77})
		defer n.Close()
		src := n.Endpoint(h1, 7500)
		var rcv []*Endpoint
		for i, h := range []netip.Addr{h2, h3, h4} {
			e := n.Endpoint(h, 7500)
			e.Join(group)
			e.SetImpairment(Impairment{Loss: 0.05, BurstLoss: 0.01, BurstLen: 3, Reorder: 0.05, Duplicate: 0.05, Seed: uint64(i)})
			rcv = append(rcv, e)
		}
		for i := range 30 {
			sendSeq(t, src, group, i*100, i*100+100)
			send(t, rcv[i%3], src.AddrPort(), fmt.Sprint("nak", i))
		}
		var s string
		for _, e := range append(rcv, src) {
			s += fmt.Sprintln(queued(t, e), e.Stats())
		}
		return s
	}
	first := run()
	for range 2 {
		if run() != first {
			t.Fatal("deliveries differ between identical runs")
		}
	}
}

func TestSetDrop(t *testing.T) {
	n := NewNetwork(NetworkConfig{})
	defer n.Close()
	a, b, c := n.Endpoint(h1, 1), n.Endpoint(h2, 1), n.Endpoint(h3, 1)
	b.Join(group)
	c.Join(group)
	var seen []netip.AddrPort
	b.SetDrop(func(d Datagram) bool {
		seen = append(seen, d.Addr)
		if d.Dst != group.Addr() {
			t.Errorf("rule saw Dst %v", d.Dst)
		}
		return binary.BigEndian.Uint32(d.Buf[:d.N]) == 3 // drop exactly #3
	})
	sendSeq(t, a, group, 0, 6)
	if got := seqs(queued(t, b)); !slices.Equal(got, []int{0, 1, 2, 4, 5}) {
		t.Errorf("with rule: %v", got)
	}
	if got := seqs(queued(t, c)); len(got) != 6 {
		t.Errorf("other receiver: %v", got)
	}
	if len(seen) != 6 || seen[0] != a.AddrPort() {
		t.Errorf("rule saw %v", seen)
	}
	if st := b.Stats(); st.DroppedRule != 1 || st.Dropped != 1 {
		t.Errorf("stats %+v", st)
	}
	b.SetDrop(nil)
	sendSeq(t, a, group, 3, 4)
	if got := seqs(queued(t, b)); !slices.Equal(got, []int{3}) {
		t.Errorf("after clearing the rule: %v", got)
	}
}

func TestPartition(t *testing.T) {
	n := NewNetwork(NetworkConfig{})
	defer n.Close()
	a, b, c := n.Endpoint(h1, 1), n.Endpoint(h2, 1), n.Endpoint(h3, 1)
	b.Join(group)
	c.Join(group)
	n.SetPartition(h2, h1, true)
	send(t, a, group, "m")
	send(t, a, b.AddrPort(), "u")
	send(t, b, a.AddrPort(), "back")
	if got := queued(t, b); len(got) != 0 {
		t.Errorf("partitioned b got %v", got)
	}
	if got := queued(t, a); len(got) != 0 {
		t.Errorf("partitioned a got %v", got)
	}
	if got := queued(t, c); len(got) != 1 {
		t.Errorf("c got %v", got)
	}
	if st := n.Stats(); st.Partitioned != 3 {
		t.Errorf("network stats %+v", st)
	}
	n.SetPartition(h1, h2, false)
	send(t, a, group, "healed")
	if got := queued(t, b); len(got) != 1 {
		t.Errorf("after healing, b got %v", got)
	}
}

// Setting a new impairment releases held datagrams first, in order.
func TestSetImpairmentReleasesHeld(t *testing.T) {
	n := NewNetwork(NetworkConfig{})
	defer n.Close()
	a, b := n.Endpoint(h1, 1), n.Endpoint(h2, 1)
	b.Join(group)
	b.SetImpairment(Impairment{Reorder: 1})
	sendSeq(t, a, group, 0, 3) // all three held
	if got := queued(t, b); len(got) != 0 {
		t.Fatalf("got %v before release", got)
	}
	b.SetImpairment(Impairment{})
	if got := seqs(queued(t, b)); !slices.Equal(got, []int{0, 1, 2}) {
		t.Errorf("released %v", got)
	}
}

func TestPanics(t *testing.T) {
	n := NewNetwork(NetworkConfig{})
	defer n.Close()
	e := n.Endpoint(h1, 1)
	for name, f := range map[string]func(){
		"multicast endpoint": func() { n.Endpoint(group.Addr(), 1) },
		"invalid endpoint":   func() { n.Endpoint(netip.Addr{}, 1) },
		"unicast join":       func() { e.Join(netip.AddrPortFrom(h2, 1)) },
		"bad impairment":     func() { e.SetImpairment(Impairment{Loss: 2}) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}
