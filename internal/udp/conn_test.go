package udp

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// needNetns skips tests that open sockets unless they run inside the private
// network namespace of scripts/netns (design.md §5): no packet may reach the
// machine's real network.
func needNetns(t testing.TB) {
	t.Helper()
	if os.Getenv("RELMCAST_NETNS") != "1" {
		t.Skip("opens sockets: run inside scripts/netns (RELMCAST_NETNS=1)")
	}
}

// randPort returns a random port below the Linux ephemeral range, so that it
// does not clash with the ephemeral ports of receivers' send sockets.
func randPort() uint16 { return uint16(10000 + rand.IntN(20000)) }

const testTimeout = 5 * time.Second

var (
	group1 = netip.MustParseAddr("239.192.0.1")
	group2 = netip.MustParseAddr("239.192.0.2")
	group6 = netip.MustParseAddr("ff12::8a11:1")
)

func ifaceByName(t testing.TB, name string) *net.Interface {
	t.Helper()
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		t.Fatalf("interface %s: %v", name, err)
	}
	return ifi
}

func openSource(t testing.TB, cfg Config) *Conn {
	t.Helper()
	c, err := OpenSource(cfg)
	if err != nil {
		t.Fatalf("OpenSource: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func openReceiver(t testing.TB, cfg Config) *Conn {
	t.Helper()
	c, err := OpenReceiver(cfg)
	if err != nil {
		t.Fatalf("OpenReceiver: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func makeDatagrams(n, size int) []Datagram {
	ds := make([]Datagram, n)
	for i := range ds {
		ds[i].Buf = make([]byte, size)
	}
	return ds
}

// payloads builds datagrams to to with payloads prefix0, prefix1, ...
func payloads(to netip.AddrPort, prefix string, n int) []Datagram {
	ds := make([]Datagram, n)
	for i := range ds {
		b := []byte(prefix + strconv.Itoa(i))
		ds[i] = Datagram{Buf: b, N: len(b), Addr: to}
	}
	return ds
}

func write(t testing.TB, c *Conn, ds []Datagram) {
	t.Helper()
	n, err := c.WriteBatch(ds)
	if err != nil || n != len(ds) {
		t.Fatalf("WriteBatch: %d of %d, %v", n, len(ds), err)
	}
}

type rx struct {
	payload string
	addr    netip.AddrPort
	dst     netip.Addr
}

func (r rx) String() string { return fmt.Sprintf("%q from %v to %v", r.payload, r.addr, r.dst) }

// readUntil reads from c until it has read a datagram with payload stop, or
// max datagrams, and returns all it read. If that takes longer than
// testTimeout it closes c (which unblocks the reader) and fails.
func readUntil(t testing.TB, c *Conn, stop string, max int) []rx {
	t.Helper()
	type result struct {
		got []rx
		err error
	}
	ch := make(chan result, 1)
	go func() {
		var got []rx
		ds := makeDatagrams(16, 2048)
		for len(got) < max { // each round reads at least one datagram
			n, err := c.ReadBatch(ds)
			if err != nil {
				ch <- result{got, err}
				return
			}
			for _, d := range ds[:n] {
				got = append(got, rx{string(d.Buf[:d.N]), d.Addr, d.Dst})
				if string(d.Buf[:d.N]) == stop {
					ch <- result{got, nil}
					return
				}
			}
		}
		ch <- result{got, nil}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("ReadBatch after %d datagrams: %v", len(r.got), r.err)
		}
		return r.got
	case <-time.After(testTimeout):
		c.Close()
		r := <-ch
		t.Fatalf("timeout after %d datagrams (want %q): %v", len(r.got), stop, r.got)
		return nil
	}
}

// checkStream checks that got is exactly prefix0..prefix<n-1>, then stop,
// all from from and to dst.
func checkStream(t testing.TB, name string, got []rx, prefix string, n int, stop string, from netip.AddrPort, dst netip.Addr) {
	t.Helper()
	if len(got) != n+1 {
		t.Fatalf("%s: got %d datagrams, want %d: %v", name, len(got), n+1, got)
	}
	for i, r := range got {
		want := prefix + strconv.Itoa(i)
		if i == n {
			want = stop
		}
		if r.payload != want {
			t.Errorf("%s: datagram %d = %q, want %q", name, i, r.payload, want)
		}
		if r.addr != from {
			t.Errorf("%s: datagram %d from %v, want %v", name, i, r.addr, from)
		}
		if r.dst != dst {
			t.Errorf("%s: datagram %d to %v, want %v", name, i, r.dst, dst)
		}
	}
}

func TestIPv4SourceAndThreeReceivers(t *testing.T) {
	needNetns(t)
	lo := ifaceByName(t, "lo")
	g := netip.AddrPortFrom(group1, randPort())
	cfg := Config{Group: g, Interface: lo, Loopback: true}
	var rs []*Conn
	for range 3 {
		rs = append(rs, openReceiver(t, cfg))
	}
	src := openSource(t, cfg)
	if src.LocalAddr() != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("source LocalAddr = %v, want 127.0.0.1", src.LocalAddr())
	}
	if src.Interface().Name != "lo" || src.Group() != g {
		t.Errorf("source Interface/Group = %s %v", src.Interface().Name, src.Group())
	}
	from := netip.AddrPortFrom(src.LocalAddr(), g.Port())

	const n = 20
	write(t, src, payloads(g, "data", n))
	write(t, src, payloads(g, "end", 1))
	for i, r := range rs {
		got := readUntil(t, r, "end0", n+1)
		checkStream(t, fmt.Sprintf("receiver %d", i), got, "data", n, "end0", from, group1)
	}

	// Unicast from a receiver to the source's NLA:P reaches the source alone.
	to := netip.AddrPortFrom(src.LocalAddr(), g.Port())
	write(t, rs[0], payloads(to, "nak", 1))
	got := readUntil(t, src, "nak0", 1)
	if got[0].payload != "nak0" || got[0].dst != src.LocalAddr() || got[0].addr.Addr() != rs[0].LocalAddr() {
		t.Errorf("source got %+v, want nak0 from %v to %v", got[0], rs[0].LocalAddr(), src.LocalAddr())
	}
	if got[0].addr.Port() == g.Port() || got[0].addr.Port() == 0 {
		t.Errorf("receiver sent from port %d, want an ephemeral port", got[0].addr.Port())
	}
	// Had a receiver got the unicast datagram, it would be queued before
	// this marker.
	write(t, src, payloads(g, "mark", 1))
	for i, r := range rs {
		got := readUntil(t, r, "mark0", 1)
		if len(got) != 1 {
			t.Errorf("receiver %d got %v before the marker", i, got)
		}
	}

	st := src.Stats()
	if st.DatagramsWritten != n+2 || st.DatagramsRead != 1 || st.BytesRead != 4 {
		t.Errorf("source stats %+v", st)
	}
	st = rs[0].Stats()
	if st.DatagramsWritten != 1 || st.DatagramsRead != n+2 || st.DroppedWrongDst != 0 {
		t.Errorf("receiver stats %+v", st)
	}
	rb, _ := rs[0].Buffers()
	_, wb := src.Buffers()
	t.Logf("buffers: receiver read %d, source write %d", rb, wb)
	if rb < 1<<20 || wb < 1<<20 {
		t.Errorf("socket buffers read %d write %d, want ≥ 1 MiB (4 MiB requested)", rb, wb)
	}
}

func TestIPv4TwoGroupsSamePort(t *testing.T) {
	needNetns(t)
	lo := ifaceByName(t, "lo")
	p := randPort()
	ga, gb := netip.AddrPortFrom(group1, p), netip.AddrPortFrom(group2, p)
	ra := openReceiver(t, Config{Group: ga, Interface: lo})
	rb := openReceiver(t, Config{Group: gb, Interface: lo})
	// Two sources on one port need two addresses.
	sa := openSource(t, Config{Group: ga, Interface: lo, Loopback: true})
	sb := openSource(t, Config{Group: gb, Interface: lo, Loopback: true, Addr: netip.MustParseAddr("127.0.0.2")})

	const n = 10
	write(t, sa, payloads(ga, "a", n))
	write(t, sb, payloads(gb, "b", n))
	write(t, sa, payloads(ga, "enda", 1))
	write(t, sb, payloads(gb, "endb", 1))
	checkStream(t, "receiver a", readUntil(t, ra, "enda0", n+1), "a", n, "enda0",
		netip.AddrPortFrom(sa.LocalAddr(), p), group1)
	checkStream(t, "receiver b", readUntil(t, rb, "endb0", n+1), "b", n, "endb0",
		netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), p), group2)
}

func TestIPv4Batch64(t *testing.T) {
	needNetns(t)
	lo := ifaceByName(t, "lo")
	g := netip.AddrPortFrom(group1, randPort())
	r := openReceiver(t, Config{Group: g, Interface: lo})
	src := openSource(t, Config{Group: g, Interface: lo, Loopback: true})

	ds := make([]Datagram, 64)
	for i := range ds {
		b := bytes.Repeat([]byte{byte(i)}, 1400)
		ds[i] = Datagram{Buf: b, N: len(b), Addr: g}
	}
	write(t, src, ds)

	rds := makeDatagrams(64, 2048)
	got, calls := 0, 0
	deadline := time.AfterFunc(testTimeout, func() { r.Close() })
	defer deadline.Stop()
	for got < 64 && calls < 64 {
		n, err := r.ReadBatch(rds[got:])
		if err != nil {
			t.Fatalf("ReadBatch after %d: %v", got, err)
		}
		got += n
		calls++
	}
	t.Logf("64 datagrams in %d ReadBatch calls", calls)
	for i, d := range rds[:got] {
		if d.N != 1400 || d.Buf[0] != byte(i) || d.Buf[1399] != byte(i) || d.Dst != group1 {
			t.Fatalf("datagram %d: N=%d first=%d dst=%v", i, d.N, d.Buf[0], d.Dst)
		}
	}
	if got != 64 {
		t.Fatalf("read %d datagrams, want 64", got)
	}
	if st := src.Stats(); st.DatagramsWritten != 64 || st.BytesWritten != 64*1400 {
		t.Errorf("source stats %+v", st)
	}
}

// TestWriteBatchLarge writes more than one sendmmsg's worth.
func TestWriteBatchLarge(t *testing.T) {
	needNetns(t)
	lo := ifaceByName(t, "lo")
	g := netip.AddrPortFrom(group1, randPort())
	r := openReceiver(t, Config{Group: g, Interface: lo})
	src := openSource(t, Config{Group: g, Interface: lo, Loopback: true})
	const n = 3*MaxBatch + 5
	write(t, src, payloads(g, "x", n))
	write(t, src, payloads(g, "end", 1))
	checkStream(t, "receiver", readUntil(t, r, "end0", n+1), "x", n, "end0",
		netip.AddrPortFrom(src.LocalAddr(), g.Port()), group1)
}

func TestTruncatedDropped(t *testing.T) {
	needNetns(t)
	lo := ifaceByName(t, "lo")
	g := netip.AddrPortFrom(group1, randPort())
	r := openReceiver(t, Config{Group: g, Interface: lo})
	src := openSource(t, Config{Group: g, Interface: lo, Loopback: true})
	big := make([]byte, 3000)
	write(t, src, []Datagram{{Buf: big, N: len(big), Addr: g}})
	write(t, src, payloads(g, "end", 1))
	got := readUntil(t, r, "end0", 2) // buffers of 2048 bytes
	if len(got) != 1 {
		t.Errorf("got %v, want only end0", got)
	}
	if st := r.Stats(); st.DroppedTruncated != 1 || st.DatagramsRead != 1 {
		t.Errorf("stats %+v, want 1 truncated, 1 read", st)
	}
}

func TestSourceAddrInUse(t *testing.T) {
	needNetns(t)
	lo := ifaceByName(t, "lo")
	g := netip.AddrPortFrom(group1, randPort())
	cfg := Config{Group: g, Interface: lo, Loopback: true}
	openReceiver(t, cfg) // receivers do not block the source's bind
	openSource(t, cfg)
	c, err := OpenSource(cfg)
	if err == nil {
		c.Close()
		t.Fatal("second OpenSource on 127.0.0.1 succeeded")
	}
	t.Logf("error: %v", err)
	msg := err.Error()
	for _, want := range []string{"127.0.0.1", strconv.Itoa(int(g.Port())), "Config.Addr", "127.0.0.2"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("error %v is not EADDRINUSE", err)
	}
	cfg.Addr = netip.MustParseAddr("127.0.0.2")
	s2 := openSource(t, cfg)
	if s2.LocalAddr() != cfg.Addr {
		t.Errorf("LocalAddr = %v, want %v", s2.LocalAddr(), cfg.Addr)
	}
	openReceiver(t, cfg) // and receivers after sources
}

func TestCloseUnblocksRead(t *testing.T) {
	needNetns(t)
	lo := ifaceByName(t, "lo")
	g := netip.AddrPortFrom(group1, randPort())
	for _, open := range []struct {
		name string
		f    func(Config) (*Conn, error)
	}{{"receiver", OpenReceiver}, {"source", OpenSource}} {
		t.Run(open.name, func(t *testing.T) {
			c, err := open.f(Config{Group: g, Interface: lo})
			if err != nil {
				t.Fatal(err)
			}
			errc := make(chan error, 1)
			go func() {
				_, err := c.ReadBatch(makeDatagrams(4, 2048))
				errc <- err
			}()
			time.Sleep(50 * time.Millisecond) // let it block
			start := time.Now()
			if err := c.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			select {
			case err := <-errc:
				if !errors.Is(err, net.ErrClosed) {
					t.Errorf("blocked ReadBatch returned %v, want net.ErrClosed", err)
				}
				t.Logf("unblocked after %v: %v", time.Since(start), err)
			case <-time.After(2 * time.Second):
				t.Fatal("Close did not unblock ReadBatch within 2s")
			}
			if err := c.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
			if _, err := c.ReadBatch(makeDatagrams(1, 10)); !errors.Is(err, net.ErrClosed) {
				t.Errorf("ReadBatch after Close: %v", err)
			}
			if _, err := c.WriteBatch(payloads(g, "x", 1)); !errors.Is(err, net.ErrClosed) {
				t.Errorf("WriteBatch after Close: %v", err)
			}
			if st := c.Stats(); st.ReadErrors != 0 || st.WriteErrors != 0 {
				t.Errorf("errors after Close counted: %+v", st)
			}
		})
	}
}

func TestWriteBatchBadDestination(t *testing.T) {
	needNetns(t)
	lo := ifaceByName(t, "lo")
	g := netip.AddrPortFrom(group1, randPort())
	src := openSource(t, Config{Group: g, Interface: lo})
	ds := payloads(g, "x", 3)
	ds[2].Addr = netip.MustParseAddrPort("[ff12::1]:9")
	n, err := src.WriteBatch(ds)
	if n != 2 || err == nil || errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteBatch = %d, %v; want 2 and a family error", n, err)
	}
	t.Logf("error: %v", err)
	if st := src.Stats(); st.DatagramsWritten != 2 || st.WriteErrors != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestDefaultInterface(t *testing.T) {
	needNetns(t) // depends on the namespace's interfaces
	g := netip.AddrPortFrom(group1, randPort())
	r := openReceiver(t, Config{Group: g})
	// In the namespace only lo has an IPv4 address.
	if r.Interface().Name != "lo" || r.LocalAddr() != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("IPv4 default: %s %v, want lo 127.0.0.1", r.Interface().Name, r.LocalAddr())
	}
	g6 := netip.AddrPortFrom(group6, randPort())
	r6 := openReceiver(t, Config{Group: g6})
	if r6.Interface().Flags&net.FlagLoopback != 0 || !r6.LocalAddr().IsLinkLocalUnicast() {
		t.Errorf("IPv6 default: %s %v, want a veth with a link-local address", r6.Interface().Name, r6.LocalAddr())
	}
	t.Logf("IPv6 default: %s %v", r6.Interface().Name, r6.LocalAddr())
	// A zone on the group names the interface.
	r6z := openReceiver(t, Config{Group: netip.AddrPortFrom(group6.WithZone("v0"), randPort())})
	if r6z.Interface().Name != "v0" {
		t.Errorf("zone v0: interface %s", r6z.Interface().Name)
	}
}

func TestIPv6LinkLocal(t *testing.T) {
	needNetns(t)
	v0 := ifaceByName(t, "v0")
	g := netip.AddrPortFrom(group6, randPort())
	cfg := Config{Group: g, Interface: v0, Loopback: true}
	r1 := openReceiver(t, cfg)
	r2 := openReceiver(t, cfg)
	src := openSource(t, cfg)
	if !src.LocalAddr().IsLinkLocalUnicast() || src.LocalAddr().Zone() != "" {
		t.Fatalf("source LocalAddr %v, want v0's link-local address without zone", src.LocalAddr())
	}
	from := netip.AddrPortFrom(src.LocalAddr(), g.Port())
	const n = 10
	write(t, src, payloads(g, "d", n))
	write(t, src, payloads(g, "end", 1))
	checkStream(t, "receiver 1", readUntil(t, r1, "end0", n+1), "d", n, "end0", from, group6)
	checkStream(t, "receiver 2", readUntil(t, r2, "end0", n+1), "d", n, "end0", from, group6)

	// NAK to the NLA as an SPM carries it: no zone.
	write(t, r1, payloads(from, "nak", 1))
	got := readUntil(t, src, "nak0", 1)
	if got[0].dst != src.LocalAddr() || got[0].addr.Addr() != r1.LocalAddr() {
		t.Errorf("source got %+v, want from %v to %v", got[0], r1.LocalAddr(), src.LocalAddr())
	}
	// With an explicit zone too.
	write(t, r2, payloads(netip.AddrPortFrom(src.LocalAddr().WithZone("v0"), g.Port()), "nak", 1))
	readUntil(t, src, "nak0", 1)
	// SPMR to the group from a receiver's send socket reaches the others.
	write(t, r2, payloads(g, "spmr", 1))
	got = readUntil(t, r1, "spmr0", 1)
	if got[0].addr.Addr() != r2.LocalAddr() {
		t.Errorf("spmr from %v, want %v", got[0].addr, r2.LocalAddr())
	}
}

// TestGenericPath runs the one-datagram-per-call fallback (the only path off
// Linux) on Linux.
func TestGenericPath(t *testing.T) {
	needNetns(t)
	for _, tc := range []struct {
		name  string
		ifi   string
		group netip.Addr
	}{{"ipv4", "lo", group1}, {"ipv6", "v0", group6}} {
		t.Run(tc.name, func(t *testing.T) {
			g := netip.AddrPortFrom(tc.group, randPort())
			cfg := Config{Group: g, Interface: ifaceByName(t, tc.ifi), Loopback: true}
			r := openReceiver(t, cfg)
			src := openSource(t, cfg)
			generic(r)
			generic(src)
			from := netip.AddrPortFrom(src.LocalAddr(), g.Port())
			write(t, src, payloads(g, "g", 5))
			write(t, src, payloads(g, "end", 1))
			checkStream(t, "receiver", readUntil(t, r, "end0", 6), "g", 5, "end0", from, tc.group)
			write(t, r, payloads(from, "nak", 1))
			got := readUntil(t, src, "nak0", 1)
			if got[0].dst != src.LocalAddr() || got[0].addr.Addr() != r.LocalAddr() {
				t.Errorf("source got %+v", got[0])
			}
		})
	}
}

// generic switches c to the one-datagram-per-call reader and writer, which
// do not split GRO buffers: GRO goes off first.
func generic(c *Conn) {
	if c.rmm != nil {
		c.rmm.disableGRO()
	}
	c.groOn.Store(false)
	c.gsoOn.Store(false)
	c.rmm, c.wmm = nil, nil
}

// TestAllocs checks that steady-state ReadBatch and WriteBatch do not
// allocate.
func TestAllocs(t *testing.T) {
	needNetns(t)
	for _, tc := range []struct {
		name    string
		ifi     string
		group   netip.Addr
		generic bool
		want    float64 // -1: only report
		offload bool    // GSO and GRO on (the default)
	}{
		{"ipv4", "lo", group1, false, 0, true},
		{"ipv6", "v0", group6, false, 0, true},
		{"ipv4-no-offload", "lo", group1, false, 0, false},
		{"ipv6-no-offload", "v0", group6, false, 0, false},
		{"ipv4-generic", "lo", group1, true, -1, false},
		{"ipv6-generic", "v0", group6, true, -1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := netip.AddrPortFrom(tc.group, randPort())
			cfg := Config{Group: g, Interface: ifaceByName(t, tc.ifi), Loopback: true, NoGSO: !tc.offload, NoGRO: !tc.offload}
			r := openReceiver(t, cfg)
			src := openSource(t, cfg)
			if tc.generic {
				generic(r)
				generic(src)
			}
			watchdog := time.AfterFunc(30*time.Second, func() { r.Close(); src.Close() })
			defer watchdog.Stop()
			const n = 8
			wds := payloads(g, "alloc", n)
			rds := makeDatagrams(n, 2048)
			nak := payloads(netip.AddrPortFrom(src.LocalAddr(), g.Port()), "nak", n)
			readAll := func(c *Conn) {
				for got, calls := 0, 0; got < n && calls < 10*n; calls++ {
					k, err := c.ReadBatch(rds[got:])
					if err != nil {
						t.Fatalf("ReadBatch: %v", err)
					}
					got += k
				}
			}
			multicast := func() {
				if _, err := src.WriteBatch(wds); err != nil {
					t.Fatal(err)
				}
				readAll(r)
			}
			unicast := func() {
				if _, err := r.WriteBatch(nak); err != nil {
					t.Fatal(err)
				}
				readAll(src)
			}
			writeOnly := func() {
				if _, err := src.WriteBatch(wds[:1]); err != nil {
					t.Fatal(err)
				}
			}
			multicast() // warm up
			unicast()
			for _, m := range []struct {
				name string
				f    func()
			}{{"multicast write+read", multicast}, {"unicast write+read", unicast}} {
				a := testing.AllocsPerRun(200, m.f)
				t.Logf("%s: %v allocs per batch of %d", m.name, a, n)
				if tc.want >= 0 && a > tc.want {
					t.Errorf("%s: %v allocs per batch of %d, want %v", m.name, a, n, tc.want)
				}
			}
			if tc.offload {
				// The payloads are of one size: both directions coalesce.
				if st := src.Stats(); st.GSOWrites == 0 || st.GROReads == 0 {
					t.Errorf("offload on but source stats %+v", st)
				}
				if st := r.Stats(); st.GSOWrites == 0 || st.GROReads == 0 {
					t.Errorf("offload on but receiver stats %+v", st)
				}
			}
			a := testing.AllocsPerRun(200, writeOnly)
			t.Logf("write only: %v allocs", a)
			if tc.want >= 0 && a > tc.want {
				t.Errorf("write only: %v allocs, want %v", a, tc.want)
			}
		})
	}
}

func TestResolveErrors(t *testing.T) {
	// No sockets: resolve fails before it looks at interfaces.
	p := uint16(7500)
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no group", Config{}, "required"},
		{"unicast group", Config{Group: netip.MustParseAddrPort("10.0.0.1:7500")}, "not a multicast"},
		{"port 0", Config{Group: netip.AddrPortFrom(group1, 0)}, "port 0"},
		{"ttl", Config{Group: netip.AddrPortFrom(group1, p), TTL: 256}, "TTL"},
		{"family", Config{Group: netip.AddrPortFrom(group1, p), Addr: netip.MustParseAddr("::1")}, "families"},
		{"multicast addr", Config{Group: netip.AddrPortFrom(group1, p), Addr: group2}, "not a unicast"},
		{"unspecified addr", Config{Group: netip.AddrPortFrom(group1, p), Addr: netip.IPv4Unspecified()}, "not a unicast"},
		{"buffer", Config{Group: netip.AddrPortFrom(group1, p), ReadBuffer: -1}, "buffer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, open := range []func(Config) (*Conn, error){OpenSource, OpenReceiver} {
				c, err := open(tc.cfg)
				if err == nil {
					c.Close()
					t.Fatal("no error")
				}
				if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "udp: ") {
					t.Errorf("error %q, want it to mention %q", err, tc.want)
				}
			}
		})
	}
}

func TestCompact(t *testing.T) {
	g := group1
	other := group2
	bufs := make([][]byte, 6)
	ds := make([]Datagram, 6)
	for i := range ds {
		bufs[i] = []byte{byte(i)}
		ds[i] = Datagram{Buf: bufs[i], N: 1, Dst: g}
	}
	ds[1].Dst = other
	ds[3].Dst = netip.Addr{} // unknown: kept
	ds[4].Dst = other
	flags := make([]uint8, 6)
	flags[5] = flagTruncated
	kept, wrong, trunc := compact(ds, flags, g, true)
	if kept != 3 || wrong != 2 || trunc != 1 {
		t.Fatalf("compact = %d %d %d, want 3 2 1", kept, wrong, trunc)
	}
	for i, want := range []byte{0, 2, 3} {
		if ds[i].Buf[0] != want {
			t.Errorf("ds[%d] has buffer %d, want %d", i, ds[i].Buf[0], want)
		}
	}
	// Every buffer is still there exactly once.
	seen := map[byte]bool{}
	for _, d := range ds {
		seen[d.Buf[0]] = true
	}
	if len(seen) != 6 {
		t.Errorf("buffers lost: %v", seen)
	}
	// A source does not filter by destination.
	for i := range ds {
		ds[i].Dst = other
		flags[i] = 0
	}
	if kept, _, _ := compact(ds, flags, g, false); kept != 6 {
		t.Errorf("unfiltered kept %d", kept)
	}
}

func TestNeedsScope(t *testing.T) {
	for s, want := range map[string]bool{
		"fe80::1": true, "ff02::1:3": true, "ff12::8a11:1": true, "ff01::1": true,
		"ff05::1": false, "ff0e::1": false, "2001:db8::1": false, "::1": false,
		"239.192.0.1": false, "::ffff:10.0.0.1": false,
	} {
		if got := needsScope(netip.MustParseAddr(s)); got != want {
			t.Errorf("needsScope(%s) = %v", s, got)
		}
	}
}

func TestReceiverPortHeld(t *testing.T) {
	needNetns(t)
	p := randPort()
	hog, err := net.ListenUDP("udp4", &net.UDPAddr{Port: int(p)}) // exclusive wildcard bind
	if err != nil {
		t.Fatal(err)
	}
	defer hog.Close()
	c, err := OpenReceiver(Config{Group: netip.AddrPortFrom(group1, p), Interface: ifaceByName(t, "lo")})
	if err == nil {
		c.Close()
		t.Fatal("receiver opened next to an exclusive wildcard socket on P")
	}
	t.Logf("error: %v", err)
	if !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), strconv.Itoa(int(p))) {
		t.Errorf("error %v", err)
	}
}

// TestTryReadBatch: TryReadBatch returns 0 at once on an empty socket and
// the datagrams in order once they are there, with and without GRO; a
// read deadline ends a waiting ReadBatch with os.ErrDeadlineExceeded,
// not counted as an error.
func TestTryReadBatch(t *testing.T) {
	needNetns(t)
	lo := ifaceByName(t, "lo")
	for _, noGRO := range []bool{false, true} {
		t.Run(fmt.Sprintf("noGRO=%v", noGRO), func(t *testing.T) {
			g := netip.AddrPortFrom(group1, randPort())
			r := openReceiver(t, Config{Group: g, Interface: lo, NoGRO: noGRO})
			src := openSource(t, Config{Group: g, Interface: lo, Loopback: true})
			rds := makeDatagrams(64, 2048)
			if n, err := r.TryReadBatch(rds); n != 0 || err != nil {
				t.Fatalf("TryReadBatch on an empty socket: %d, %v", n, err)
			}
			write(t, src, payloads(g, "p", 10))
			var got []string
			deadline := time.Now().Add(testTimeout)
			for len(got) < 10 && time.Now().Before(deadline) {
				n, err := r.TryReadBatch(rds)
				if err != nil {
					t.Fatal(err)
				}
				for _, d := range rds[:n] {
					got = append(got, string(d.Buf[:d.N]))
				}
				if n == 0 {
					time.Sleep(time.Millisecond)
				}
			}
			for i, p := range got {
				if p != "p"+strconv.Itoa(i) {
					t.Fatalf("datagram %d: %q", i, p)
				}
			}
			if len(got) != 10 {
				t.Fatalf("read %d datagrams, want 10", len(got))
			}
			if n, err := r.TryReadBatch(rds); n != 0 || err != nil {
				t.Fatalf("TryReadBatch after all were read: %d, %v", n, err)
			}
			start := time.Now()
			if err := r.SetReadDeadline(start.Add(20 * time.Millisecond)); err != nil {
				t.Fatal(err)
			}
			if _, err := r.ReadBatch(rds); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("ReadBatch past its deadline: %v", err)
			}
			if time.Since(start) > 2*time.Second {
				t.Fatalf("deadline of 20ms took %v", time.Since(start))
			}
			if st := r.Stats(); st.ReadErrors != 0 || st.DatagramsRead != 10 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}
