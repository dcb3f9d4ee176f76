package udp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// mixedBatch builds a batch that exercises every way a GSO run starts and
// ends: equal sizes, a shorter last one, runs longer than 64 segments and
// than 64 KiB, sizes that grow, a zero-length datagram, and destinations
// that change (to = the group, other = a second destination, may be
// invalid to leave it out). Each datagram starts with its index (4 bytes,
// when it is long enough) and is filled with a pattern of it.
func mixedBatch(to, other netip.AddrPort) []Datagram {
	var sizes []int
	add := func(n, size int) {
		for range n {
			sizes = append(sizes, size)
		}
	}
	add(20, 1000)
	add(1, 300) // shorter: ends the run
	add(3, 50)
	add(70, 64)   // more than 64 segments
	add(50, 1400) // more than 64 KiB: 46 + 4
	add(1, 1500)  // larger than the one before: a new run
	add(1, 0)     // empty datagram
	add(5, 8)
	add(2, 9) // larger after a run
	add(1, 1)
	ds := make([]Datagram, len(sizes))
	for i, n := range sizes {
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(i*7 + j)
		}
		if n >= 4 {
			binary.BigEndian.PutUint32(b, uint32(i))
		}
		ds[i] = Datagram{Buf: b, N: n, Addr: to}
	}
	if other.IsValid() {
		for _, i := range []int{5, 6, 40, 41, 100} { // break runs by destination
			ds[i].Addr = other
		}
	}
	return ds
}

// readExactly reads from c until it has n datagrams (or fails after
// testTimeout), with ds of k entries of size bufSize: k smaller than a
// GRO buffer's segments exercises the carry-over between calls.
func readExactly(t testing.TB, c *Conn, n, k, bufSize int) []Datagram {
	t.Helper()
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-done:
		case <-time.After(testTimeout):
			c.Close()
		}
	}()
	var got []Datagram
	ds := makeDatagrams(k, bufSize)
	for calls := 0; len(got) < n && calls < 100*n; calls++ {
		m, err := c.ReadBatch(ds)
		if err != nil {
			t.Fatalf("ReadBatch after %d of %d datagrams: %v", len(got), n, err)
		}
		for _, d := range ds[:m] {
			got = append(got, Datagram{Buf: append([]byte(nil), d.Buf[:d.N]...), N: d.N, Addr: d.Addr, Dst: d.Dst})
		}
	}
	return got
}

// checkSame checks that got is exactly want[i] for those want sent to dst:
// sizes, contents, source and destination.
func checkSame(t testing.TB, name string, got, want []Datagram, to netip.AddrPort, from netip.AddrPort) {
	t.Helper()
	var exp []Datagram
	for _, d := range want {
		if d.Addr == to {
			exp = append(exp, d)
		}
	}
	if len(got) != len(exp) {
		t.Fatalf("%s: got %d datagrams, want %d", name, len(got), len(exp))
	}
	for i := range exp {
		g, w := got[i], exp[i]
		if g.N != w.N || string(g.Buf[:g.N]) != string(w.Buf[:w.N]) {
			t.Fatalf("%s: datagram %d: %d bytes %x..., want %d bytes %x...", name, i, g.N, head(g.Buf[:g.N]), w.N, head(w.Buf[:w.N]))
		}
		if g.Addr != from || g.Dst != to.Addr() {
			t.Fatalf("%s: datagram %d from %v to %v, want from %v to %v", name, i, g.Addr, g.Dst, from, to.Addr())
		}
	}
}

func head(b []byte) []byte { return b[:min(len(b), 8)] }

// TestOffloadMatrix sends a mixed batch with GSO on and off to receivers
// with GRO on and off, on IPv4 (lo) and IPv6 (veth), and checks that every
// receiver gets exactly the datagrams sent, split at the right places.
func TestOffloadMatrix(t *testing.T) {
	needNetns(t)
	for _, fam := range []struct {
		name, ifi string
		group     netip.Addr
	}{{"ipv4", "lo", group1}, {"ipv6", "v0", group6}} {
		for _, gso := range []bool{true, false} {
			for _, gro := range []bool{true, false} {
				name := fmt.Sprintf("%s/gso=%v/gro=%v", fam.name, gso, gro)
				t.Run(name, func(t *testing.T) {
					g := netip.AddrPortFrom(fam.group, randPort())
					ifi := ifaceByName(t, fam.ifi)
					rcfg := Config{Group: g, Interface: ifi, NoGRO: !gro}
					r1 := openReceiver(t, rcfg)
					r2 := openReceiver(t, rcfg)
					rOther := openReceiver(t, Config{Group: netip.AddrPortFrom(fam.group, g.Port()+1), Interface: ifi, NoGRO: !gro})
					src := openSource(t, Config{Group: g, Interface: ifi, Loopback: true, NoGSO: !gso})
					if sgso, _ := src.Offload(); sgso != gso {
						t.Fatalf("source GSO %v, want %v", sgso, gso)
					}
					if _, rgro := r1.Offload(); rgro != gro {
						t.Fatalf("receiver GRO %v, want %v", rgro, gro)
					}
					other := netip.AddrPortFrom(fam.group, g.Port()+1)
					ds := mixedBatch(g, other)
					write(t, src, ds)
					from := netip.AddrPortFrom(src.LocalAddr(), g.Port())
					nTo, nOther := 0, 0
					for _, d := range ds {
						if d.Addr == g {
							nTo++
						} else {
							nOther++
						}
					}
					checkSame(t, "receiver 1 (ds of 64)", readExactly(t, r1, nTo, 64, 2048), ds, g, from)
					checkSame(t, "receiver 2 (ds of 5)", readExactly(t, r2, nTo, 5, 1500), ds, g, from)
					checkSame(t, "other port", readExactly(t, rOther, nOther, 3, 2048), ds, other, from)
					st := src.Stats()
					if st.DatagramsWritten != uint64(len(ds)) {
						t.Errorf("source wrote %d, want %d", st.DatagramsWritten, len(ds))
					}
					if gso && st.GSOWrites == 0 || !gso && st.GSOWrites != 0 {
						t.Errorf("GSO %v: %d coalesced sends", gso, st.GSOWrites)
					}
					rst := r1.Stats()
					if rst.DatagramsRead != uint64(nTo) || rst.DroppedTruncated != 0 || rst.DroppedWrongDst != 0 {
						t.Errorf("receiver 1 stats %+v", rst)
					}
					// GSO datagrams reach a GRO socket on the same host
					// unsegmented (lo and veth alike).
					if gso && gro && rst.GROReads == 0 {
						t.Errorf("GSO to GRO: no coalesced read")
					}
					if !gro && rst.GROReads != 0 {
						t.Errorf("no GRO but %d coalesced reads", rst.GROReads)
					}
					t.Logf("%d datagrams in %d sends with UDP_SEGMENT; receiver: %d coalesced reads", len(ds), st.GSOWrites, rst.GROReads)
					// And the receivers' unicast to the source (NAKs).
					nak := netip.AddrPortFrom(src.LocalAddr(), g.Port())
					naks := mixedBatch(nak, netip.AddrPort{})
					write(t, r1, naks)
					checkSame(t, "source", readExactly(t, src, len(naks), 64, 2048), naks, nak,
						netip.AddrPortFrom(r1.LocalAddr(), r1.send.LocalAddr().(interface{ AddrPort() netip.AddrPort }).AddrPort().Port()))
				})
			}
		}
	}
}

// TestGSOStream sends 200 batches of 64 PGM-sized datagrams with GSO to
// three multicast receivers, two with GRO and one without, each reading in
// its own goroutine (the sender stays a little ahead of the slowest): each
// sees exactly the datagrams sent, in order.
func TestGSOStream(t *testing.T) {
	needNetns(t)
	lo := ifaceByName(t, "lo")
	g := netip.AddrPortFrom(group1, randPort())
	const rbuf = 16 << 20
	rs := []*Conn{
		openReceiver(t, Config{Group: g, Interface: lo, ReadBuffer: rbuf}),
		openReceiver(t, Config{Group: g, Interface: lo, ReadBuffer: rbuf}),
		openReceiver(t, Config{Group: g, Interface: lo, ReadBuffer: rbuf, NoGRO: true}),
	}
	src := openSource(t, Config{Group: g, Interface: lo, Loopback: true})
	const batches, size = 200, 1448
	n := batches * 64
	type result struct {
		got []uint32
		bad int
	}
	results := make(chan result, len(rs))
	got := make([]atomic.Int64, len(rs)) // datagrams read so far, per receiver
	for i, r := range rs {
		go func() {
			var res result
			ds := makeDatagrams(64, 2048)
			deadline := time.AfterFunc(testTimeout, func() { r.Close() })
			defer deadline.Stop()
			for len(res.got) < n {
				k, err := r.ReadBatch(ds)
				if err != nil {
					break
				}
				for _, d := range ds[:k] {
					if d.N != size {
						res.bad++
						continue
					}
					res.got = append(res.got, binary.BigEndian.Uint32(d.Buf))
				}
				got[i].Store(int64(len(res.got)))
			}
			results <- res
		}()
	}
	wds := make([]Datagram, 64)
	for i := range wds {
		wds[i] = Datagram{Buf: make([]byte, size), N: size, Addr: g}
	}
	for b := range batches {
		for i := range wds {
			binary.BigEndian.PutUint32(wds[i].Buf, uint32(b*64+i))
		}
		write(t, src, wds)
		// Flow control, so that a receiver starved of CPU (a loaded
		// machine) does not overflow its socket buffer: stay within 2048
		// datagrams (3 MB) of the slowest, waiting at most testTimeout.
		sent := int64((b + 1) * 64)
		for wait := time.Now(); time.Since(wait) < testTimeout; time.Sleep(100 * time.Microsecond) {
			slowest := sent
			for i := range got {
				slowest = min(slowest, got[i].Load())
			}
			if sent-slowest <= 2048 {
				break
			}
		}
	}
	for i := range rs {
		res := <-results
		if res.bad != 0 || len(res.got) != n {
			t.Errorf("receiver: %d datagrams, %d of the wrong size; want %d", len(res.got), res.bad, n)
			continue
		}
		for j, v := range res.got {
			if v != uint32(j) {
				t.Errorf("receiver %d: datagram %d is #%d", i, j, v)
				break
			}
		}
	}
	st := src.Stats()
	t.Logf("source: %d datagrams in %d coalesced sends", st.DatagramsWritten, st.GSOWrites)
	for i, r := range rs {
		t.Logf("receiver %d: %+v", i, r.Stats())
	}
}

// TestGSOFallback makes the kernel's refusal of UDP_SEGMENT happen (test
// hook) and checks that the batch is resent without GSO, GSO stays off,
// and the receiver gets exactly the datagrams.
func TestGSOFallback(t *testing.T) {
	needNetns(t)
	lo := ifaceByName(t, "lo")
	for _, errno := range []unix.Errno{unix.EIO, unix.EINVAL} {
		t.Run(errno.Error(), func(t *testing.T) {
			g := netip.AddrPortFrom(group1, randPort())
			r := openReceiver(t, Config{Group: g, Interface: lo})
			src := openSource(t, Config{Group: g, Interface: lo, Loopback: true})
			if gso, gro := src.Offload(); !gso || !gro {
				t.Fatalf("offload %v %v, want both on (kernel without GSO/GRO?)", gso, gro)
			}
			src.wmm.forceErr = errno
			ds := mixedBatch(g, netip.AddrPort{})
			write(t, src, ds)
			write(t, src, ds) // and again, now without trying
			from := netip.AddrPortFrom(src.LocalAddr(), g.Port())
			checkSame(t, "receiver", readExactly(t, r, 2*len(ds), 64, 2048), append(ds, ds...), g, from)
			if gso, _ := src.Offload(); gso {
				t.Error("GSO still on after the kernel refused it")
			}
			if st := src.Stats(); st.GSOFallbacks != 1 || st.GSOWrites != 0 || st.WriteErrors != 0 {
				t.Errorf("stats %+v, want 1 fallback, no GSO write, no error", st)
			}
		})
	}
	// Other errors are errors, and GSO stays on.
	g := netip.AddrPortFrom(group1, randPort())
	src := openSource(t, Config{Group: g, Interface: lo, Loopback: true})
	src.wmm.forceErr = unix.EPERM
	if n, err := src.WriteBatch(mixedBatch(g, netip.AddrPort{})); n != 0 || err == nil {
		t.Errorf("WriteBatch = %d, %v; want 0 and EPERM", n, err)
	}
	if gso, _ := src.Offload(); !gso {
		t.Error("GSO turned off by EPERM")
	}
}

// TestGROSetsockoptFails checks that a receiver whose UDP_GRO setsockopt
// fails works without GRO.
func TestGROSetsockoptFails(t *testing.T) {
	needNetns(t)
	old := setsockoptGRO
	setsockoptGRO = func(int, bool) error { return unix.ENOPROTOOPT }
	t.Cleanup(func() { setsockoptGRO = old })
	lo := ifaceByName(t, "lo")
	g := netip.AddrPortFrom(group1, randPort())
	r := openReceiver(t, Config{Group: g, Interface: lo})
	setsockoptGRO = old
	src := openSource(t, Config{Group: g, Interface: lo, Loopback: true})
	if _, gro := r.Offload(); gro || r.rmm.gro != nil {
		t.Fatal("GRO on although setsockopt failed")
	}
	ds := mixedBatch(g, netip.AddrPort{})
	write(t, src, ds)
	checkSame(t, "receiver", readExactly(t, r, len(ds), 64, 2048), ds, g, netip.AddrPortFrom(src.LocalAddr(), g.Port()))
	if st := r.Stats(); st.GROReads != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestGROTruncated: a datagram larger than the caller's buffer is dropped
// and counted with GRO as without, also inside a coalesced buffer.
func TestGROTruncated(t *testing.T) {
	needNetns(t)
	lo := ifaceByName(t, "lo")
	g := netip.AddrPortFrom(group1, randPort())
	r := openReceiver(t, Config{Group: g, Interface: lo})
	src := openSource(t, Config{Group: g, Interface: lo, Loopback: true})
	ds := make([]Datagram, 10)
	for i := range ds {
		ds[i] = Datagram{Buf: make([]byte, 1000), N: 1000, Addr: g}
	}
	ds[9].N = 100
	write(t, src, ds)
	got := readExactly(t, r, 1, 4, 500) // buffers of 500: only the last fits
	if len(got) != 1 || got[0].N != 100 {
		t.Fatalf("got %d datagrams (first %d bytes), want the 100-byte one", len(got), got[0].N)
	}
	if st := r.Stats(); st.DroppedTruncated != 9 || st.DatagramsRead != 1 {
		t.Errorf("stats %+v, want 9 truncated, 1 read", st)
	}
}

func TestGSORun(t *testing.T) {
	a := netip.MustParseAddrPort("239.192.0.1:7500")
	b := netip.MustParseAddrPort("239.192.0.2:7500")
	m := &mmsg{gso: true, gsoMTU: 1472}
	mk := func(sizes ...int) []Datagram {
		ds := make([]Datagram, len(sizes))
		for i, n := range sizes {
			ds[i] = Datagram{N: n, Addr: a}
		}
		return ds
	}
	rep := func(n, size int) []int {
		s := make([]int, n)
		for i := range s {
			s[i] = size
		}
		return s
	}
	other := mk(100, 100, 100)
	other[2].Addr = b
	for _, tc := range []struct {
		name string
		ds   []Datagram
		want int
	}{
		{"one", mk(100), 1},
		{"equal", mk(100, 100, 100), 3},
		{"shorter last", mk(100, 100, 50, 50), 3},
		{"longer", mk(100, 200), 1},
		{"empty first", mk(0, 0), 1},
		{"empty second", mk(100, 0), 1},
		{"other destination", other, 2},
		{"64 segments", mk(rep(100, 10)...), 64},
		{"64 KiB", mk(rep(100, 1400)...), 46},
		{"above MTU", mk(1473, 1473), 1},
		{"at MTU", mk(1472, 1472), 2},
	} {
		if got := m.gsoRun(tc.ds); got != tc.want {
			t.Errorf("%s: gsoRun = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestParseCmsgsGRO(t *testing.T) {
	pi4 := make([]byte, unix.SizeofInet4Pktinfo)
	copy(pi4[8:12], []byte{239, 192, 0, 1})
	seg := make([]byte, 4)
	binary.NativeEndian.PutUint32(seg, 1448)
	oob := cmsg(nil, unix.IPPROTO_IP, unix.IP_PKTINFO, pi4)
	oob = cmsg(oob, unix.SOL_UDP, unix.UDP_GRO, seg)
	dst, n := parseCmsgs(aligned(oob))
	if dst != group1 || n != 1448 {
		t.Errorf("parseCmsgs = %v %d, want %v 1448", dst, n, group1)
	}
	oob = cmsg(nil, unix.SOL_UDP, unix.UDP_GRO, seg)
	oob = cmsg(oob, unix.IPPROTO_IP, unix.IP_PKTINFO, pi4)
	if dst, n := parseCmsgs(aligned(oob)); dst != group1 || n != 1448 {
		t.Errorf("GRO first: parseCmsgs = %v %d", dst, n)
	}
	if _, n := parseCmsgs(aligned(cmsg(nil, unix.SOL_UDP, unix.UDP_GRO, seg[:2]))); n != 0 {
		t.Errorf("short UDP_GRO: %d", n)
	}
	a := aligned(oob)
	if allocs := testing.AllocsPerRun(100, func() { parseCmsgs(a) }); allocs != 0 {
		t.Errorf("parseCmsgs allocates %v", allocs)
	}
}
