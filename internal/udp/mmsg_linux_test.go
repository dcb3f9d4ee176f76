package udp

import (
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// cmsg appends one control message to b.
func cmsg(b []byte, level, typ int32, data []byte) []byte {
	off := len(b)
	b = append(b, make([]byte, unix.CmsgSpace(len(data)))...)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[off]))
	h.Level, h.Type = level, typ
	h.SetLen(unix.CmsgLen(len(data)))
	copy(b[off+unix.CmsgLen(0):], data)
	return b
}

// aligned copies b into 8-byte aligned memory.
func aligned(b []byte) []byte {
	if len(b) == 0 {
		return b
	}
	w := make([]uint64, (len(b)+7)/8)
	a := unsafe.Slice((*byte)(unsafe.Pointer(&w[0])), len(b))
	copy(a, b)
	return a
}

func TestParseDst(t *testing.T) {
	ttl := []byte{64, 0, 0, 0}
	pi4 := make([]byte, unix.SizeofInet4Pktinfo)
	copy(pi4[4:8], []byte{127, 0, 0, 1})    // spec_dst: the local address
	copy(pi4[8:12], []byte{239, 192, 0, 1}) // addr: the header destination
	pi6 := make([]byte, unix.SizeofInet6Pktinfo)
	copy(pi6, netip.MustParseAddr("ff12::8a11:1").AsSlice())

	var both4 []byte
	both4 = cmsg(both4, unix.IPPROTO_IP, unix.IP_TTL, ttl)
	both4 = cmsg(both4, unix.IPPROTO_IP, unix.IP_PKTINFO, pi4)
	only6 := cmsg(nil, unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, pi6)
	short := cmsg(nil, unix.IPPROTO_IP, unix.IP_PKTINFO, pi4[:8])
	pad := unix.CmsgSpace(len(pi4)) - unix.CmsgLen(len(pi4)) // 4 on 64-bit, 0 on 32-bit
	bad := cmsg(nil, unix.IPPROTO_IP, unix.IP_PKTINFO, pi4)
	(*unix.Cmsghdr)(unsafe.Pointer(&bad[0])).SetLen(1000)

	for _, tc := range []struct {
		name string
		oob  []byte
		want netip.Addr
	}{
		{"none", nil, netip.Addr{}},
		{"ttl then pktinfo", both4, group1},
		{"ipv6", only6, group6},
		{"short pktinfo", short, netip.Addr{}},
		{"length beyond buffer", bad, netip.Addr{}},
		{"truncated header", both4[:4], netip.Addr{}},
		{"padding cut", both4[:len(both4)-pad], group1},
		{"cut in second", both4[:len(both4)-pad-4], netip.Addr{}},
	} {
		if got := parseDst(aligned(tc.oob)); got != tc.want {
			t.Errorf("%s: parseDst = %v, want %v", tc.name, got, tc.want)
		}
	}
	oob := aligned(both4)
	if a := testing.AllocsPerRun(100, func() { parseDst(oob) }); a != 0 {
		t.Errorf("parseDst allocates %v", a)
	}
}

func TestSockaddrRoundTrip(t *testing.T) {
	v0 := &net.Interface{Index: 7, Name: "v0"}
	c4 := &Conn{ifi: v0}
	c6 := &Conn{ifi: v0, v6: true}
	for _, tc := range []struct {
		c     *Conn
		to    string
		scope uint32
	}{
		{c4, "239.192.0.1:7500", 0},
		{c4, "[::ffff:10.1.2.3]:1", 0},
		{c6, "[ff12::8a11:1]:7500", 7},
		{c6, "[fe80::1]:65535", 7},
		{c6, "[fe80::1%v0]:3", 7},
		{c6, "[fe80::1%9]:3", 9},
		{c6, "[2001:db8::1]:3", 0},
	} {
		to := netip.MustParseAddrPort(tc.to)
		var sa unix.RawSockaddrInet6
		if _, err := tc.c.putSockaddr(&sa, to); err != nil {
			t.Fatalf("%v: %v", to, err)
		}
		want := netip.AddrPortFrom(to.Addr().Unmap().WithZone(""), to.Port())
		if got := sockaddrToAddrPort(&sa); got != want {
			t.Errorf("%v: round trip %v", to, got)
		}
		if tc.c.v6 && sa.Scope_id != tc.scope {
			t.Errorf("%v: scope %d, want %d", to, sa.Scope_id, tc.scope)
		}
	}
	var sa unix.RawSockaddrInet6
	if _, err := c4.putSockaddr(&sa, netip.MustParseAddrPort("[ff12::1]:1")); err == nil {
		t.Error("IPv6 destination on an IPv4 socket accepted")
	}
	if _, err := c6.putSockaddr(&sa, netip.MustParseAddrPort("10.0.0.1:1")); err == nil {
		t.Error("IPv4 destination on an IPv6 socket accepted")
	}
	if _, err := c6.putSockaddr(&sa, netip.AddrPort{}); err == nil {
		t.Error("zero destination accepted")
	}
}

// wildcardPeer opens a socket the way OpenPGM and ZeroMQ do: bound to
// INADDR_ANY:port with SO_REUSEPORT, joined to group on lo.
func wildcardPeer(t *testing.T, port uint16, group netip.Addr) *net.UDPConn {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: int(port)}); err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "peer")
	pc, err := net.FilePacketConn(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	uc := pc.(*net.UDPConn)
	if err := ipv4.NewPacketConn(uc).JoinGroup(ifaceByName(t, "lo"), &net.UDPAddr{IP: group.AsSlice()}); err != nil {
		t.Fatal(err)
	}
	return uc
}

// TestOpenPGMPeerOnSameHost documents how our sockets coexist with an
// OpenPGM/ZeroMQ peer on the same host, which binds INADDR_ANY:P with
// SO_REUSEPORT: our receivers coexist with it (both get the data), but our
// source's exclusive bind of 127.0.0.1:P conflicts with the wildcard bind,
// whichever comes first.
func TestOpenPGMPeerOnSameHost(t *testing.T) {
	needNetns(t)
	lo := ifaceByName(t, "lo")
	g := netip.AddrPortFrom(group1, randPort())
	peer := wildcardPeer(t, g.Port(), group1)
	r := openReceiver(t, Config{Group: g, Interface: lo})
	if _, err := OpenSource(Config{Group: g, Interface: lo}); err == nil {
		t.Fatal("source bound 127.0.0.1:P next to a wildcard peer on P")
	} else {
		t.Logf("source next to a wildcard peer: %v", err)
	}
	// A source on another port P' is fine, and its data reaches both.
	// (Send with a source on a free port to the group at port P.)
	s := openSource(t, Config{Group: netip.AddrPortFrom(group1, g.Port()+1), Interface: lo, Loopback: true})
	write(t, s, payloads(g, "end", 1))
	readUntil(t, r, "end0", 1)
	peer.SetReadDeadline(time.Now().Add(testTimeout))
	buf := make([]byte, 100)
	if n, _, err := peer.ReadFromUDPAddrPort(buf); err != nil || string(buf[:n]) != "end0" {
		t.Errorf("peer read %q, %v", buf[:n], err)
	}
}

// benchConns opens a source and a receiver on lo, with GSO (source) and
// GRO (receiver) on or off.
func benchConns(b *testing.B, gso, gro bool) (src, r *Conn, g netip.AddrPort) {
	needNetns(b)
	g = netip.AddrPortFrom(group1, randPort())
	cfg := Config{Group: g, Interface: ifaceByName(b, "lo"), Loopback: true, NoGSO: !gso, NoGRO: !gro}
	r = openReceiver(b, cfg)
	src = openSource(b, cfg)
	if sg, _ := src.Offload(); sg != gso {
		b.Fatalf("GSO %v, want %v", sg, gso)
	}
	if _, rg := r.Offload(); rg != gro {
		b.Fatalf("GRO %v, want %v", rg, gro)
	}
	return src, r, g
}

// benchModes are the I/O paths the benchmarks compare: sendmmsg/recvmmsg
// with GSO and GRO (the default), with GSO only (the kernel segments for
// the receiving socket), without offload, and one datagram per call.
var benchModes = []struct {
	name          string
	gso, gro, gen bool
}{
	{"gso-gro", true, true, false},
	{"gso", true, false, false},
	{"mmsg", false, false, false},
	{"generic", false, false, true},
}

const benchBatch, benchSize = 64, 1400

// BenchmarkWriteReadBatch writes a batch of 64 datagrams of 1400 bytes to the
// group and reads them back, in one goroutine: the cost of both system calls
// per packet. pkts/s counts packets moved (each written once and read once).
func BenchmarkWriteReadBatch(b *testing.B) {
	for _, mode := range benchModes {
		b.Run(mode.name, func(b *testing.B) {
			src, r, g := benchConns(b, mode.gso, mode.gro)
			if mode.gen {
				generic(src)
				generic(r)
			}
			watchdog := time.AfterFunc(time.Minute, func() { r.Close() })
			defer watchdog.Stop()
			wds := make([]Datagram, benchBatch)
			for i := range wds {
				wds[i] = Datagram{Buf: make([]byte, benchSize), N: benchSize, Addr: g}
			}
			rds := makeDatagrams(benchBatch, 2048)
			b.SetBytes(benchBatch * benchSize)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := src.WriteBatch(wds); err != nil {
					b.Fatal(err)
				}
				for got, calls := 0, 0; got < benchBatch && calls < 10*benchBatch; calls++ {
					n, err := r.ReadBatch(rds[got:])
					if err != nil {
						b.Fatal(err)
					}
					got += n
				}
			}
			b.ReportMetric(float64(benchBatch*b.N)/b.Elapsed().Seconds(), "pkts/s")
		})
	}
}

// BenchmarkXNetBatch is BenchmarkWriteReadBatch through x/net's
// ipv4.PacketConn ReadBatch/WriteBatch on the same sockets, with reused
// messages, OOB buffers, destination addresses and ControlMessage: what the
// Linux path replaces.
func BenchmarkXNetBatch(b *testing.B) {
	src, r, g := benchConns(b, false, false)
	watchdog := time.AfterFunc(time.Minute, func() { r.Close() })
	defer watchdog.Stop()
	wp, rp := ipv4.NewPacketConn(src.send), ipv4.NewPacketConn(r.recv)
	if err := rp.SetControlMessage(ipv4.FlagDst, true); err != nil {
		b.Fatal(err)
	}
	to := net.UDPAddrFromAddrPort(g)
	wms := make([]ipv4.Message, benchBatch)
	rms := make([]ipv4.Message, benchBatch)
	for i := range wms {
		wms[i] = ipv4.Message{Buffers: [][]byte{make([]byte, benchSize)}, Addr: to}
		rms[i] = ipv4.Message{Buffers: [][]byte{make([]byte, 2048)}, OOB: ipv4.NewControlMessage(ipv4.FlagDst)}
	}
	var cm ipv4.ControlMessage
	b.SetBytes(benchBatch * benchSize)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		for sent := 0; sent < benchBatch; {
			n, err := wp.WriteBatch(wms[sent:], 0)
			if err != nil {
				b.Fatal(err)
			}
			sent += n
		}
		for got, calls := 0, 0; got < benchBatch && calls < 10*benchBatch; calls++ {
			n, err := rp.ReadBatch(rms[got:], 0)
			if err != nil {
				b.Fatal(err)
			}
			for _, m := range rms[got : got+n] {
				if err := cm.Parse(m.OOB[:m.NN]); err != nil || !cm.Dst.Equal(group1.AsSlice()) {
					b.Fatalf("dst %v, %v", cm.Dst, err)
				}
			}
			got += n
		}
	}
	b.ReportMetric(float64(benchBatch*b.N)/b.Elapsed().Seconds(), "pkts/s")
}

// BenchmarkPipelined (per I/O path) has a writer goroutine send batches as fast as it can
// while a reader goroutine reads: sent and received packets per second, and
// the loss when the reader falls behind (it is a blaster, not a rate-limited
// PGM source).
func BenchmarkPipelined(b *testing.B) {
	for _, mode := range benchModes[:3] {
		b.Run(mode.name, func(b *testing.B) { benchPipelined(b, mode.gso, mode.gro) })
	}
}

func benchPipelined(b *testing.B, gso, gro bool) {
	src, r, g := benchConns(b, gso, gro)
	wds := make([]Datagram, benchBatch)
	for i := range wds {
		wds[i] = Datagram{Buf: make([]byte, benchSize), N: benchSize, Addr: g}
	}
	var received atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		rds := makeDatagrams(benchBatch, 2048)
		for { // ends when r is closed
			n, err := r.ReadBatch(rds)
			if err != nil {
				return
			}
			received.Add(int64(n))
		}
	}()
	b.SetBytes(benchBatch * benchSize)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if _, err := src.WriteBatch(wds); err != nil {
			b.Fatal(err)
		}
	}
	sendTime := time.Since(start)
	// Let the reader drain: wait (bounded) until the count stops moving.
	last := int64(-1)
	for i := 0; i < 100 && received.Load() != last; i++ {
		last = received.Load()
		time.Sleep(20 * time.Millisecond)
	}
	b.StopTimer()
	r.Close()
	<-done
	sent := float64(benchBatch * b.N)
	b.ReportMetric(sent/sendTime.Seconds(), "sent-pkts/s")
	b.ReportMetric(float64(received.Load())/sendTime.Seconds(), "recv-pkts/s")
	b.ReportMetric(100*(1-float64(received.Load())/sent), "loss-%")
}
