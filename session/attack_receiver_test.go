package session

// Hostile input against the receiver core: each test names the attack and
// checks the bound that holds under it (issue 6). They log what they
// measure, for the record: go test -run Attack -v ./session.

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/relmcast/relmcast/internal/wire"
)

// checkBounds fails if any source holds more than the configuration
// allows: ring slots (the window, rounded up to a power of two), NAK
// state, payload bytes, and the sources and tombstones themselves.
func checkBounds(t testing.TB, r *Receiver) {
	t.Helper()
	c := r.cfg
	maxRing := 1 << bits.Len(uint(c.Window-1))
	if len(r.sources) > 2*c.MaxSources || len(r.tombs) > c.MaxSources {
		t.Fatalf("%d sources, %d tombstones; MaxSources %d", len(r.sources), len(r.tombs), c.MaxSources)
	}
	for _, s := range r.sources {
		mem := 0
		for i := range s.ring {
			mem += cap(s.ring[i].data)
		}
		for _, b := range s.pool {
			mem += cap(b)
		}
		switch {
		case len(s.ring) > max(maxRing, 64):
			t.Fatalf("%v: ring of %d slots; window %d", s.tsi, len(s.ring), c.Window)
		case s.nak.Len() > c.Window:
			t.Fatalf("%v: %d numbers tracked by NAK; window %d", s.tsi, s.nak.Len(), c.Window)
		case mem != s.mem:
			t.Fatalf("%v: buffers hold %d bytes, accounted %d", s.tsi, mem, s.mem)
		case mem > c.WindowBytes:
			t.Fatalf("%v: buffers hold %d bytes; WindowBytes %d", s.tsi, mem, c.WindowBytes)
		case s.head <= s.lead && s.lead-s.head >= uint64(c.Window):
			t.Fatalf("%v: window %d..%d wider than %d", s.tsi, s.head, s.lead, c.Window)
		}
	}
	if cap(r.apdu) > 2*wire.MaxAPDU {
		t.Fatalf("reassembly buffer of %d bytes", cap(r.apdu))
	}
}

// sourceMem is the memory a source's window can pin: the ring's slot
// structs plus its payload buffers.
func sourceMem(s *source) int {
	return len(s.ring)*int(unsafe.Sizeof(slot{})) + s.mem
}

// TestAttackSequenceJump: a source that jumps its sequence numbers by 2^31
// looks, in serial arithmetic, like one going back: its data would be
// dropped as old, silently, for ever. The second SPM that says so makes
// it a restart of the same TSI: the old session's hole is reported, and
// the new numbers are delivered as a new session.
func TestAttackSequenceJump(t *testing.T) {
	x := newRxTest(t, ReceiverConfig{Window: 1024})
	x.spm(0, 0, 0, false)
	x.odata(1, 0, "a")
	x.odata(2, 0, "b")
	x.odata(4, 0, "d")
	x.wantEvents("source-new", `data 1-1 "a"`, `data 2-2 "b"`)
	const jump = 1 << 31
	x.odata(5+jump, jump, "far") // reads as 2^31 behind: old
	x.spm(1, jump, 5+jump, false)
	x.wantEvents()
	checkBounds(t, x.r)
	t.Log("# the second SPM beyond the window confirms: a restart, the hole lost")
	x.spm(2, jump, 5+jump, false)
	x.odata(6+jump, jump, "new")
	x.wantEvents("loss 3-3 n=1 source-restart", `data 4-4 "d"`,
		fmt.Sprintf("restart from %v", testTSI), fmt.Sprintf(`data %d-%d "new"`, 6+jump, 6+jump))
	checkBounds(t, x.r)

	t.Log("# a jump of 2^31-1 reads as ahead: dropped until an SPM confirms it; then the window overruns, bounded, and says so")
	y := newRxTest(t, ReceiverConfig{Window: 1024})
	y.spm(0, 0, 0, false)
	y.odata(1, 0, "a")
	y.odata(jump, 0, "far")
	checkBounds(t, y.r)
	if st := y.r.Stats(); st.Dropped != 1 || len(y.r.sources[0].ring) != 64 {
		t.Fatalf("far data not dropped: %+v", st)
	}
	y.spm(1, 0, jump, false)
	y.rdata(jump, 0, "far")
	checkBounds(t, y.r)
	s := y.r.sources[0]
	t.Logf("after a jump of 2^31-1: ring %d slots, NAK tracking %d numbers, window memory %d bytes",
		len(s.ring), s.nak.Len(), sourceMem(s))
	for i := 0; i < 100 && len(y.events) < 4; i++ {
		y.advanceToDeadline()
		y.naks()
	}
	y.wantEvents("source-new", `data 1-1 "a"`, fmt.Sprintf("loss 2-%d n=%d overrun", jump-1, jump-2),
		fmt.Sprintf(`data %d-%d "far"`, jump, jump))
}

// TestAttackAbsurdWindow: SPMs and data advertising windows that cannot
// be: a trail past the lead (or past the packet itself) is ignored rather
// than turned into loss; a lead 2^31-1 ahead costs at most the window.
func TestAttackAbsurdWindow(t *testing.T) {
	x := newRxTest(t, ReceiverConfig{Window: 4096})
	x.spm(0, 0, 10, false)
	x.odata(11, 0, "a")
	x.odata(13, 0, "c") // 12 is missing: a trail past it would make it lost
	x.spm(1, 1000, 13, false)
	x.odata(14, 1<<30, "d")
	x.rdata(15, 0xFFFFFFF0, "e")
	x.wantEvents("source-new", `data 11-11 "a"`)
	x.rdata(12, 0, "b")
	x.wantEvents(`data 12-12 "b"`, `data 13-13 "c"`, `data 14-14 "d"`, `data 15-15 "e"`)
	if s := x.r.Stats(); s.LossEvents != 0 {
		t.Fatalf("bogus trails made loss: %+v", s)
	}
	t.Log("# a window 2^31 wide: the trail is far behind, nothing happens")
	x.spm(2, 16+1<<31, 15, false)
	x.wantEvents()
	t.Log("# a lead 2^31-1 ahead: the window overruns, once, bounded")
	x.spm(3, 15, 15+1<<31-1, false)
	checkBounds(t, x.r)
	s := x.r.sources[0]
	t.Logf("after an SPM lead 2^31-1 ahead: ring %d slots, NAK tracking %d numbers", len(s.ring), s.nak.Len())
	x.wantEvents()
	for i := 0; i < 100 && len(x.events) == 0; i++ {
		x.advanceToDeadline()
		x.naks()
	}
	if got := strings.Join(x.events, "|"); got != fmt.Sprintf("loss 16-%d n=%d overrun", uint32(15+1<<31-1), 1<<31-1) {
		t.Fatalf("events %q", got)
	}
}

// fakeSource is the i-th fake of a flood: a TSI and address of its own.
func fakeSource(i int) (wire.TSI, netip.Addr) {
	var g wire.GSI
	binary.BigEndian.PutUint32(g[:], uint32(i)*2654435761)
	g[4], g[5] = 0xFA, byte(i)
	a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
	return wire.TSI{GSI: g, Port: uint16(i) | 1}, a
}

// TestAttackSourceFlood: a million fake TSIs, one SPM or one ODATA each,
// while real sources send. The table stays at MaxSources; each fake is
// evicted, oldest first, by the next (reported gone, reason evicted); a
// real source that starts during the flood is admitted and confirmed by
// its second packet, and both real sources lose nothing.
func TestAttackSourceFlood(t *testing.T) {
	fakes := 1_000_000
	if raceEnabled || testing.Short() {
		fakes = 50_000
	}
	const maxSources = 1024
	r := NewReceiver(ReceiverConfig{DPort: testPort, Group: testGroup, MaxSources: maxSources})
	now := time.Unix(1000, 0)
	real := [2]wire.TSI{testTSI, {GSI: wire.GSI{7, 7, 7, 7, 7, 7}, Port: 999}}
	realAddr := [2]netip.Addr{testSrc, netip.MustParseAddr("127.0.0.2")}
	var next [2]uint32 // next message of each real source
	type stream struct {
		got             uint32
		gone, losses    int
		announced, more bool
	}
	streams := map[wire.TSI]*stream{}
	evicted := 0
	deliver := func() {
		r.Deliver(func(e *Event) bool {
			st := streams[e.Source]
			if e.Source != real[0] && e.Source != real[1] {
				if e.Kind == EventSourceGone {
					if e.GoneReason != GoneEvicted {
						t.Fatalf("fake gone: %v", e.GoneReason)
					}
					evicted++
				}
				return true
			}
			switch e.Kind {
			case EventSourceNew:
				st.announced = true
			case EventData:
				if binary.BigEndian.Uint32(e.Data) != st.got {
					t.Fatalf("%v: message %d, want %d", e.Source, binary.BigEndian.Uint32(e.Data), st.got)
				}
				st.got++
			case EventLoss:
				st.losses++
			case EventSourceGone:
				st.gone++
			}
			return true
		})
		for {
			if _, _, ok := r.Poll(nil); !ok {
				break
			}
		}
	}
	payload := make([]byte, 100)
	realPacket := func(k int, spm bool) {
		p := wire.Packet{SPort: real[k].Port, DPort: testPort, GSI: real[k].GSI}
		if spm {
			p.Type, p.Seq, p.Lead, p.PathNLA = wire.TypeSPM, next[k], next[k]-1, realAddr[k]
		} else {
			binary.BigEndian.PutUint32(payload, next[k])
			p.Type, p.Seq, p.Payload = wire.TypeODATA, next[k], payload
			next[k]++
		}
		r.HandlePacket(now, &p, realAddr[k])
	}
	for k := range real {
		streams[real[k]] = &stream{}
	}
	for range 3 {
		realPacket(0, true)
	}
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	start := time.Now()
	for i := range fakes {
		tsi, addr := fakeSource(i)
		p := wire.Packet{SPort: tsi.Port, DPort: testPort, GSI: tsi.GSI, Seq: uint32(i)}
		if i%2 == 0 {
			p.Type, p.Lead, p.PathNLA = wire.TypeSPM, uint32(i), addr
		} else {
			p.Type, p.Payload = wire.TypeODATA, payload[:8]
		}
		r.HandlePacket(now, &p, addr)
		switch {
		case i == fakes/2:
			t.Log("# a second real source starts in the middle of the flood")
			for range 3 {
				realPacket(1, true)
			}
		case i%1000 == 0:
			realPacket(0, false)
			if i > fakes/2 {
				realPacket(1, false)
			}
		}
		if i%64 == 63 { // the owner delivers after each batch it reads
			now = now.Add(100 * time.Microsecond)
			r.Advance(now)
			deliver()
			checkBoundsCheap(t, r)
		}
	}
	deliver()
	elapsed := time.Since(start)
	runtime.ReadMemStats(&m1)
	checkBounds(t, r)
	st := r.Stats()
	t.Logf("%d fake TSIs in %v (%.0f packets/s): %d sources tracked, %d evicted, %d refused, %d SPMRs sent; heap %d -> %d KiB",
		fakes, elapsed.Round(time.Millisecond), float64(fakes)/elapsed.Seconds(), st.Sources, st.SourcesEvicted,
		st.SourcesDropped, st.SPMRs, m0.HeapInuse>>10, m1.HeapInuse>>10)
	if st.SourcesDropped != 0 || st.SourcesEvicted < uint64(fakes-maxSources) || evicted < fakes-2*maxSources {
		t.Errorf("stats %+v, %d evictions delivered", st, evicted)
	}
	for k, tsi := range real {
		s := streams[tsi]
		if !s.announced || s.got != next[k] || s.losses != 0 || s.gone != 0 {
			t.Errorf("real source %d: %+v, sent %d", k, *s, next[k])
		}
	}

	t.Log("# confirmed fakes (an SPM and a second packet each) fill the table: a new real source is refused, and counted")
	r = NewReceiver(ReceiverConfig{DPort: testPort, Group: testGroup, MaxSources: 16, SourceExpiry: time.Second})
	for i := range 16 {
		tsi, addr := fakeSource(i)
		for range 2 {
			p := wire.Packet{Type: wire.TypeSPM, SPort: tsi.Port, DPort: testPort, GSI: tsi.GSI, PathNLA: addr, Lead: 0xFFFFFFFF}
			r.HandlePacket(now, &p, addr)
		}
	}
	p := wire.Packet{Type: wire.TypeSPM, SPort: real[1].Port, DPort: testPort, GSI: real[1].GSI, PathNLA: realAddr[1], Lead: 5}
	r.HandlePacket(now, &p, realAddr[1])
	if st := r.Stats(); st.SourcesDropped != 1 || st.Sources != 16 {
		t.Fatalf("stats %+v", st)
	}
	t.Log("# ... until they expire (SourceExpiry without a packet)")
	now = now.Add(time.Second)
	r.Advance(now)
	r.Deliver(func(*Event) bool { return true })
	r.HandlePacket(now, &p, realAddr[1])
	if st := r.Stats(); st.Sources != 1 || r.byTSI[real[1]] == nil {
		t.Fatalf("stats %+v", st)
	}
}

// checkBoundsCheap checks the table bounds only (checkBounds walks every
// ring: too slow to run every batch of a million-source flood).
func checkBoundsCheap(t testing.TB, r *Receiver) {
	t.Helper()
	if len(r.sources) > 2*r.cfg.MaxSources || len(r.byTSI) > 2*r.cfg.MaxSources || len(r.tombs) > r.cfg.MaxSources {
		t.Fatalf("%d sources, %d in the map, %d tombstones", len(r.sources), len(r.byTSI), len(r.tombs))
	}
}

// TestAttackUnreadFakes: fakes flood a receiver whose application does
// not read: the evicted sources' last events wait, so at most as many
// again as MaxSources are held; then new ones are refused, not queued.
func TestAttackUnreadFakes(t *testing.T) {
	r := NewReceiver(ReceiverConfig{DPort: testPort, Group: testGroup, MaxSources: 8})
	now := time.Unix(1, 0)
	for i := range 100 {
		tsi, addr := fakeSource(i)
		p := wire.Packet{Type: wire.TypeODATA, SPort: tsi.Port, DPort: testPort, GSI: tsi.GSI, Payload: []byte("x")}
		r.HandlePacket(now, &p, addr)
	}
	checkBounds(t, r)
	if st := r.Stats(); st.Sources != 16 || st.SourcesEvicted != 8 || st.SourcesDropped != 84 {
		t.Fatalf("stats %+v", st)
	}
	n := 0
	r.Deliver(func(e *Event) bool { n++; return true })
	if st := r.Stats(); st.Sources != 8 || n != 8*3+8*2 {
		t.Fatalf("%d events, stats %+v", n, st)
	}
}

// TestAttackMalformedOptions: option blocks that lie about lengths or
// count. The codec rejects each (the owner counts it as malformed and
// drops it); none reaches the core or panics. 16 options are accepted.
func TestAttackMalformedOptions(t *testing.T) {
	base := func(opts ...[]byte) []byte {
		p := wire.Packet{Type: wire.TypeODATA, SPort: testTSI.Port, DPort: testPort, GSI: testTSI.GSI, Seq: 1}
		b, _ := p.Append(nil)
		b = b[:wire.HeaderLen+wire.DataHeaderLen]
		total := 4
		for _, o := range opts {
			total += len(o)
		}
		b[5] |= wire.OptPresent
		b = append(b, 0x00, 4, byte(total>>8), byte(total))
		for _, o := range opts {
			b = append(b, o...)
		}
		return b
	}
	opt := func(typ byte, n int) []byte { o := make([]byte, max(n, 2)); o[0] = typ; o[1] = byte(n); return o }
	end := func(o []byte) []byte { o[0] |= 0x80; return o }
	many := func(n int) [][]byte {
		var os [][]byte
		for range n - 1 {
			os = append(os, opt(0x21, 4)) // unknown option, skipped
		}
		os[len(os)-1] = end(os[len(os)-1])
		return os
	}
	for _, tc := range []struct {
		name string
		b    []byte
		ok   bool
	}{
		{"zero-length option", base(end(opt(0x21, 0))), false},
		{"option length 2", base(end(opt(0x21, 2))), false},
		{"option past the end", append(base(opt(0x21, 4)), end(opt(0x21, 200))...), false},
		{"OPT_LENGTH total past the end", func() []byte { b := base(end(opt(0x21, 4))); b[wire.HeaderLen+wire.DataHeaderLen+3] = 200; return b }(), false},
		{"OPT_LENGTH total 0", func() []byte { b := base(end(opt(0x21, 4))); b[wire.HeaderLen+wire.DataHeaderLen+3] = 0; return b }(), false},
		{"OPT_LENGTH of length 0", func() []byte { b := base(end(opt(0x21, 4))); b[wire.HeaderLen+wire.DataHeaderLen+1] = 0; return b }(), false},
		{"no OPT_END", base(opt(0x21, 4), opt(0x21, 4)), false},
		{"16 options", base(many(16)...), true},
		{"17 options", base(many(17)...), false},
		{"200 options", base(many(200)...), false},
		{"OPT_FRAGMENT of 12 bytes", base(end(opt(0x01, 12))), false},
		{"OPT_NAK_LIST not a multiple of 4", base(end(opt(0x02, 7))), false},
	} {
		wire.SetChecksum(tc.b)
		var p wire.Packet
		err := wire.Parse(tc.b, &p)
		if (err == nil) != tc.ok {
			t.Errorf("%s: Parse error %v", tc.name, err)
		}
		r := NewReceiver(ReceiverConfig{DPort: testPort, Group: testGroup})
		if err == nil {
			r.HandlePacket(time.Unix(1, 0), &p, testSrc)
		}
		checkBounds(t, r)
	}
}

// TestAttackFragments: fragments that do not add up. The codec rejects
// the impossible ones (an APDU over 64 KiB or shorter than the fragment, a
// first sqn after the fragment's own, an offset past the APDU length): the
// owner drops them as malformed datagrams. The rest reach the core, which
// reports each bad message lost (malformed) in its place, at once or when
// the next message shows it cannot complete; the reassembly buffer never
// exceeds the largest APDU; the stream goes on after it.
func TestAttackFragments(t *testing.T) {
	x := newRxTest(t, ReceiverConfig{Window: 4096})
	fragPacket := func(seq, first, off, total uint32, payload string) wire.Packet {
		return wire.Packet{Type: wire.TypeODATA, SPort: testTSI.Port, DPort: testPort, GSI: testTSI.GSI,
			Seq: seq, Payload: []byte(payload), HasFragment: true,
			Fragment: wire.Fragment{First: first, Offset: off, Length: total}}
	}
	frag := func(seq, first, off, total uint32, payload string) {
		x.packet(fragPacket(seq, first, off, total, payload))
	}
	for _, p := range []wire.Packet{
		fragPacket(11, 11, 0, 0xFFFFFFFF, "abc"), // an APDU of 4 GiB
		fragPacket(11, 11, 0, wire.MaxAPDU+1, "abc"),
		fragPacket(11, 11, 0, 2, "abc"),       // shorter than this fragment
		fragPacket(11, 20, 0, 6, "abc"),       // first after this one
		fragPacket(11, 11, 9, 6, "abc"),       // offset past the APDU
		fragPacket(11, 11, 5, 6, "abc"),       // ends past the APDU
		fragPacket(11, 11+1<<31, 0, 6, "abc"), // first 2^31 back
	} {
		b, err := p.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		var q wire.Packet
		if err := wire.Parse(b, &q); err != wire.ErrFragment {
			t.Errorf("fragment %+v: Parse error %v, want %v", p.Fragment, err, wire.ErrFragment)
		}
	}
	x.spm(0, 0, 9, false)
	x.odata(10, 0, "ok")
	x.wantEvents("source-new", `data 10-10 "ok"`)
	t.Log("# a fragment whose APDU started before the window, not at the join: an orphan")
	frag(11, 5, 3, 6, "abc")
	x.wantEvents("loss 11-11 n=1 malformed")
	x.odata(12, 0, "after")
	x.wantEvents(`data 12-12 "after"`)
	t.Log("# fragments disagreeing on the APDU length")
	frag(13, 13, 0, 6, "abc")
	frag(14, 13, 3, 7, "def")
	x.wantEvents("loss 13-14 n=2 malformed")
	t.Log("# a first sqn naming the middle of another message")
	frag(15, 15, 0, 9, "abc")
	frag(16, 15, 3, 9, "def")
	frag(17, 16, 6, 9, "ghi")
	x.wantEvents("loss 15-17 n=3 malformed")
	t.Log("# a first sqn 2^30 back, after the first message: not one we joined in the middle of")
	frag(18, 18+3<<30, 0, 6, "abc")
	x.wantEvents("loss 18-18 n=1 malformed")
	t.Log("# a first sqn naming an unfragmented message")
	frag(19, 12, 5, 8, "abc")
	x.wantEvents("loss 19-19 n=1 malformed")
	t.Log("# a message whose fragments stop coming: lost when the next message begins")
	frag(20, 20, 0, 60000, "abc")
	frag(21, 20, 3, 60000, "def")
	x.wantEvents()
	x.odata(22, 0, "next")
	x.wantEvents("loss 20-21 n=2 malformed", `data 22-22 "next"`)
	t.Log("# a valid fragmented message still arrives")
	frag(23, 23, 0, 6, "abc")
	frag(24, 23, 3, 6, "def")
	x.wantEvents(`data 23-24 "abcdef"`)
	checkBounds(t, x.r)

	t.Log("# 65535-byte APDUs of 2 fragments each, many times: the reassembly buffer stays at one APDU")
	y := newRxTest(t, ReceiverConfig{})
	y.spm(0, 0, 0, false)
	big := strings.Repeat("z", 32768)
	for i := range uint32(50) {
		seq := 1 + 2*i
		y.packet(wire.Packet{Type: wire.TypeODATA, Seq: seq, Payload: []byte(big), HasFragment: true,
			Fragment: wire.Fragment{First: seq, Offset: 0, Length: 65535}})
		y.packet(wire.Packet{Type: wire.TypeODATA, Seq: seq + 1, Payload: []byte(big[:65535-32768]), HasFragment: true,
			Fragment: wire.Fragment{First: seq, Offset: 32768, Length: 65535}})
	}
	if n := y.r.Stats().Messages; n != 50 || cap(y.r.apdu) > 2*wire.MaxAPDU {
		t.Fatalf("%d messages, reassembly buffer %d bytes", n, cap(y.r.apdu))
	}
}

// TestAttackWindowBytes: a source sending 64 KiB packets ahead of a hole
// (or to an application that does not read) fills WindowBytes, not
// Window*64 KiB: the oldest data goes as overrun loss, reported.
func TestAttackWindowBytes(t *testing.T) {
	const budget = 1 << 20
	x := newRxTest(t, ReceiverConfig{Window: 32768, WindowBytes: budget})
	x.spm(0, 0, 0, false)
	x.odata(1, 0, "a")
	x.wantEvents("source-new", `data 1-1 "a"`)
	big := make([]byte, 64000)
	p := wire.Packet{Type: wire.TypeODATA, SPort: testTSI.Port, DPort: testPort, GSI: testTSI.GSI, Payload: big}
	for seq := uint32(3); seq < 3+200; seq++ { // 2 is missing: nothing can be delivered
		p.Seq = seq
		x.r.HandlePacket(x.now, &p, testSrc)
		checkBounds(t, x.r)
	}
	s := x.r.sources[0]
	t.Logf("200 packets of 64000 bytes behind a hole: window memory %d bytes (WindowBytes %d)", sourceMem(s), budget)
	x.deliver()
	if len(x.events) == 0 || !strings.HasPrefix(x.events[0], "loss 2-") || !strings.HasSuffix(x.events[0], "overrun") {
		t.Fatalf("events %q", x.events)
	}
	got := 0
	for _, e := range x.events[1:] {
		if !strings.HasPrefix(e, "data ") {
			t.Fatalf("events %q", x.events)
		}
		got++
	}
	if got < budget/65536 || got > budget/64000 {
		t.Fatalf("%d messages kept", got)
	}
}

// TestAttackSlowSourceFlood: fake sources, data only, slowly enough that
// they live to ask for an SPM: each costs at most four SPMRs (at 25 ms and
// after a second, multicast and unicast), then is evicted or expires.
func TestAttackSlowSourceFlood(t *testing.T) {
	const fakes = 5000
	r := NewReceiver(ReceiverConfig{DPort: testPort, Group: testGroup})
	now := time.Unix(1, 0)
	spmrs := 0
	for i := range fakes {
		tsi, addr := fakeSource(i)
		p := wire.Packet{Type: wire.TypeODATA, SPort: tsi.Port, DPort: testPort, GSI: tsi.GSI, Payload: []byte("x")}
		r.HandlePacket(now, &p, addr)
		now = now.Add(time.Millisecond) // 1000 new sources a second
		r.Advance(now)
		r.Deliver(func(*Event) bool { return true })
		for {
			b, _, ok := r.Poll(nil)
			if !ok {
				break
			}
			var q wire.Packet
			if wire.Parse(b, &q) == nil && q.Type == wire.TypeSPMR {
				spmrs++
			}
		}
	}
	checkBounds(t, r)
	t.Logf("%d fake sources at 1000/s: %d SPMRs (%.1f per fake), %d evicted", fakes, spmrs,
		float64(spmrs)/fakes, r.Stats().SourcesEvicted)
	if spmrs > 4*fakes {
		t.Fatalf("%d SPMRs for %d fake sources", spmrs, fakes)
	}
}

// TestAttackNAKReflection: two spoofed packets per fake source (an SPM
// naming a victim as path NLA instead of the source's address, then data
// a window ahead) make a receiver NAK the whole window to the victim,
// NCFRetries times: Window/63 packets per retry and per source. PGM
// cannot tell them from real ones; the receiver-wide NAKRate bounds what
// all of them together get out of it: NAKBurst + NAKRate × the time.
func TestAttackNAKReflection(t *testing.T) {
	const window = 32768
	victim := netip.MustParseAddr("203.0.113.7")
	for _, tc := range []struct {
		sources int
		rate    int // NAKRate; 0: default
	}{{1, -1}, {1, 0}, {10, -1}, {10, 0}} {
		x := newRxTest(t, ReceiverConfig{Window: window, NAKRate: tc.rate})
		for i := range tc.sources {
			gsi := wire.GSI{9, 9, 9, 9, 9, byte(i)}
			x.packet(wire.Packet{Type: wire.TypeSPM, GSI: gsi, Seq: 0, Trail: 0, Lead: 100, PathNLA: victim})
			x.packet(wire.Packet{Type: wire.TypeODATA, GSI: gsi, Seq: 100 + window - 1, Payload: []byte("far")})
		}
		start := x.now
		packets, seqs := 0, 0
		for range 100000 {
			d := x.r.NextDeadline()
			if d.IsZero() || d.Sub(start) > 5*time.Second {
				break
			}
			x.now = d
			x.r.Advance(d)
			for {
				b, dst, ok := x.r.Poll(nil)
				if !ok {
					break
				}
				var p wire.Packet
				if wire.Parse(b, &p) == nil && p.Type == wire.TypeNAK {
					if dst.Addr() != victim {
						t.Fatalf("NAK to %v", dst)
					}
					packets++
					seqs += 1 + p.NAKListLen
				}
			}
		}
		cfg := x.r.cfg
		elapsed := x.now.Sub(start)
		t.Logf("%d fake sources, NAKRate %d (burst %d): %d NAK packets (%d sqns) to the victim in %v; %d not sent (NAKsLimited)",
			tc.sources, cfg.NAKRate, cfg.NAKBurst, packets, seqs, elapsed.Round(time.Millisecond), x.r.Stats().NAKsLimited)
		perRetry := (window + wire.MaxNAKSeqs - 1) / wire.MaxNAKSeqs
		if limit := tc.sources * cfg.NAK.NCFRetries * perRetry; packets > limit {
			t.Fatalf("%d NAK packets, more than %d", packets, limit)
		}
		if cfg.NAKRate > 0 {
			if limit := cfg.NAKBurst + int(int64(cfg.NAKRate)*int64(elapsed)/int64(time.Second)); packets > limit {
				t.Fatalf("%d NAK packets in %v, more than NAKRate allows (%d)", packets, elapsed, limit)
			}
		}
	}
}
