package session

// Restarts of a sender with the same TSI (same GSI and source port), its
// sequence numbers started over (issue 6): reported as a restart at once,
// never mixed into the old session, and the old session's late packets
// neither resurrect it nor end the new one.

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/relmcast/relmcast/internal/wire"
)

func (x *rxTest) synData(typ wire.Type, seq, trail uint32, payload string) {
	x.packet(wire.Packet{Type: typ, Seq: seq, Trail: trail, SYN: true, Payload: []byte(payload)})
}

// TestReceiverRestartAfterFIN: a session that finished cleanly (FIN, all
// delivered, gone) leaves a tombstone for SourceExpiry. Its late packets
// stay dropped; a new session with the same TSI and numbers from 0 again
// is a restart as soon as two of its SPMs say so, and its data is
// delivered; the old session's FIN SPMs that come after do not end it.
func TestReceiverRestartAfterFIN(t *testing.T) {
	x := newRxTest(t, ReceiverConfig{})
	for i := range uint32(3) {
		x.spm(i, 0, 0xFFFFFFFF, false)
	}
	for i := range uint32(5) {
		x.odata(i, 0, fmt.Sprint("old", i))
	}
	x.spm(3, 0, 4, true)
	x.wantEvents("source-new", `data 0-0 "old0"`, `data 1-1 "old1"`, `data 2-2 "old2"`, `data 3-3 "old3"`,
		`data 4-4 "old4"`, "gone fin")

	t.Log("# the old session's late packets: FIN SPMs, a repair, reordered data and SPMs, an NCF")
	x.advance(50 * time.Millisecond)
	x.spm(4, 0, 4, true)
	x.spm(5, 0, 4, true)
	x.rdata(2, 0, "old2")
	x.odata(4, 0, "old4")
	x.spm(2, 0, 0xFFFFFFFF, false) // a start SPM, very late: one is not enough
	x.packet(wire.Packet{Type: wire.TypeNCF, Seq: 3, SourceNLA: testSrc, GroupNLA: testGroup})
	x.wantEvents()
	if s := x.r.Stats(); s.Sources != 0 || len(x.r.tombs) != 1 {
		t.Fatalf("resurrected: %+v, %d tombstones", s, len(x.r.tombs))
	}

	t.Log("# 100 ms after the FIN, well within SourceExpiry: restarted, numbered from 0 again")
	x.advance(50 * time.Millisecond)
	x.spm(0, 0, 0xFFFFFFFF, false)
	x.wantEvents()
	x.spm(1, 0, 0xFFFFFFFF, false)
	x.wantEvents(fmt.Sprintf("restart from %v", testTSI))
	x.spm(2, 0, 0xFFFFFFFF, false)
	x.odata(0, 0, "new0")
	x.odata(1, 0, "new1")
	x.wantEvents(`data 0-0 "new0"`, `data 1-1 "new1"`)

	t.Log("# the old session's last FIN SPMs, late: they do not end the new one")
	x.spm(6, 0, 4, true)
	x.spm(7, 0, 4, true)
	x.odata(2, 0, "new2")
	x.wantEvents(`data 2-2 "new2"`)
	t.Log("# the new session ends as any other")
	x.spm(3, 0, 2, true)
	x.wantEvents("gone fin")
	if s := x.r.Stats(); s.Sources != 0 || s.LossEvents != 0 || s.Messages != 8 {
		t.Fatalf("stats %+v", s)
	}
}

// TestReceiverRestartAfterFINBySYN: the restarted session's SPMs are all
// lost, and its numbers start elsewhere (a random first sequence
// number): its first packet, marked OPT_SYN, is enough, whether its
// numbers fall behind the old lead (dropped as old otherwise) or ahead.
// Without OPT_SYN, data behind the old lead stays dropped.
func TestReceiverRestartAfterFINBySYN(t *testing.T) {
	for _, first := range []uint32{0xFFFF0000, 1000} {
		x := newRxTest(t, ReceiverConfig{})
		x.spm(0, 0, 0xFFFFFFFF, false)
		for i := range uint32(3) {
			x.odata(i, 0, fmt.Sprint("old", i))
		}
		x.spm(1, 0, 2, true)
		x.wantEvents("source-new", `data 0-0 "old0"`, `data 1-1 "old1"`, `data 2-2 "old2"`, "gone fin")
		x.rdata(0, 0, "old0") // its own first packet, repaired late: still old
		x.wantEvents()

		x.advance(time.Second)
		x.synData(wire.TypeODATA, first, first, "new0")
		x.odata(first+1, first, "new1")
		x.wantEvents(fmt.Sprintf("restart from %v", testTSI), fmt.Sprintf(`data %d-%d "new0"`, first, first),
			fmt.Sprintf(`data %d-%d "new1"`, first+1, first+1))
	}

	t.Log("# no OPT_SYN (an OpenPGM sender), numbers behind the old lead: dropped until its SPMs say so")
	x := newRxTest(t, ReceiverConfig{})
	x.spm(0, 0, 0xFFFFFFFF, false)
	x.odata(0, 0, "old0")
	x.odata(1, 0, "old1")
	x.spm(1, 0, 1, true)
	x.wantEvents("source-new", `data 0-0 "old0"`, `data 1-1 "old1"`, "gone fin")
	x.odata(0xFFFF0000, 0xFFFF0000, "new0")
	x.wantEvents()
	x.spm(0, 0xFFFF0000, 0xFFFF0000, false)
	x.spm(1, 0xFFFF0000, 0xFFFF0000, false)
	x.odata(0xFFFF0001, 0xFFFF0000, "new1")
	x.wantEvents(fmt.Sprintf("restart from %v", testTSI), fmt.Sprintf(`data %d-%d "new1"`, 0xFFFF0001, 0xFFFF0001))
}

// TestReceiverRestartSYNFillsNoHole: a live session with a hole; the
// sender restarts with the same TSI, its SPMs lost, and its first number
// falls right on the hole. Its OPT_SYN packet is not the old session's
// (whose first packet, at its trail, was 0): a restart, the hole is lost
// as such, never filled with the new session's data.
func TestReceiverRestartSYNFillsNoHole(t *testing.T) {
	x := newRxTest(t, ReceiverConfig{})
	x.spm(0, 0, 0xFFFFFFFF, false)
	x.synData(wire.TypeODATA, 0, 0, "old0")
	x.odata(1, 0, "old1")
	x.odata(3, 0, "old3")
	x.wantEvents("source-new", `data 0-0 "old0"`, `data 1-1 "old1"`)
	x.synData(wire.TypeRDATA, 0, 0, "old0") // the old session's own first packet, repaired: a duplicate
	x.wantEvents()
	x.synData(wire.TypeODATA, 2, 2, "new2")
	x.odata(3, 2, "new3")
	x.wantEvents("loss 2-2 n=1 source-restart", `data 3-3 "old3"`,
		fmt.Sprintf("restart from %v", testTSI), `data 2-2 "new2"`, `data 3-3 "new3"`)
	if s := x.r.Stats(); s.Sources != 1 || s.Duplicates != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// TestReceiverRestartFarAhead: the restarted session's OPT_SYN packet and
// SPMs are lost and its numbers start more than a window past the old
// lead: its data is dropped (never an overrun of the old session that
// would deliver it as the old one's), until its first packet comes after
// all (reordered, or repaired for another receiver). Then nothing of it
// is lost: what was dropped is NAKed and repaired.
func TestReceiverRestartFarAhead(t *testing.T) {
	const first = 50000
	x := newRxTest(t, ReceiverConfig{Window: 1024})
	x.spm(0, 0, 0xFFFFFFFF, false)
	x.synData(wire.TypeODATA, 0, 0, "old0")
	x.odata(1, 0, "old1")
	x.odata(3, 0, "old3")
	x.wantEvents("source-new", `data 0-0 "old0"`, `data 1-1 "old1"`)
	x.odata(first+1, first, "new1")
	x.odata(first+2, first, "new2")
	x.wantEvents()
	if s := x.r.Stats(); s.Dropped != 2 {
		t.Fatalf("far data not dropped: %+v", s)
	}
	x.synData(wire.TypeRDATA, first, first, "new0")
	x.wantEvents("loss 2-2 n=1 source-restart", `data 3-3 "old3"`,
		fmt.Sprintf("restart from %v", testTSI), fmt.Sprintf(`data %d-%d "new0"`, first, first))
	x.odata(first+3, first, "new3")
	x.advanceToDeadline()
	if got := x.naks(); fmt.Sprint(got) != fmt.Sprint([]uint32{first + 1, first + 2}) {
		t.Fatalf("NAKs %v", got)
	}
	x.rdata(first+1, first, "new1")
	x.rdata(first+2, first, "new2")
	x.wantEvents(fmt.Sprintf(`data %d-%d "new1"`, first+1, first+1), fmt.Sprintf(`data %d-%d "new2"`, first+2, first+2),
		fmt.Sprintf(`data %d-%d "new3"`, first+3, first+3))
}

// TestRestartSameTSICores runs real Sender cores into a Receiver core: a
// sender with OPT_SYN on sends, closes, and a second with the same TSI
// and another first sequence number follows 100 ms later, all of whose
// SPMs are lost. Everything of both arrives in order, the
// second reported as a restart.
func TestRestartSameTSICores(t *testing.T) {
	x := newRxTest(t, ReceiverConfig{JoinBackfill: 64})
	run := func(first uint32, prefix string, dropSPM bool) {
		t.Helper()
		tx, err := NewSender(SenderConfig{TSI: testTSI, DPort: testPort, Group: testGroup, NLA: testSrc,
			FirstSeq: first, SYN: true, Heartbeat: []time.Duration{}}, x.now)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 20 {
			msg := fmt.Sprint(prefix, i)
			if i == 0 {
				msg = string(make([]byte, 3000)) // fragmented: OPT_SYN on the first fragment
			}
			if err := tx.Send(x.now, []byte(msg)); err != nil {
				t.Fatal(err)
			}
		}
		tx.Close(x.now)
		var buf [2048]byte
		for step := 0; step < 1000 && !tx.Done(); step++ {
			for {
				b, ok := tx.Poll(x.now, buf[:0])
				if !ok {
					break
				}
				var p wire.Packet
				if err := wire.Parse(b, &p); err != nil {
					t.Fatal(err)
				}
				if p.Type == wire.TypeSPM && dropSPM && !p.FIN {
					continue
				}
				x.r.HandlePacket(x.now, &p, testSrc)
			}
			x.deliver()
			x.now = x.now.Add(time.Millisecond)
			x.r.Advance(x.now)
			for {
				b, _, ok := x.r.Poll(buf[:0])
				if !ok {
					break
				}
				var p wire.Packet
				if wire.Parse(b, &p) == nil {
					tx.HandlePacket(x.now, &p, netip.AddrPortFrom(testSrc, testPort))
				}
			}
		}
		if !tx.Done() {
			t.Fatal("sender never done")
		}
	}
	want := func(prefix string, first uint32, restart bool) []string {
		ev := []string{"source-new"}
		if restart {
			ev[0] = fmt.Sprintf("restart from %v", testTSI)
		}
		ev = append(ev, fmt.Sprintf(`data %d-%d %q`, first, first+2, make([]byte, 3000)))
		for i := range uint32(19) {
			ev = append(ev, fmt.Sprintf(`data %d-%d "%s%d"`, first+3+i, first+3+i, prefix, i+1))
		}
		return append(ev, "gone fin")
	}
	run(7, "a", false)
	x.wantEvents(want("a", 7, false)...)
	x.advance(100 * time.Millisecond)
	run(5, "b", true)
	x.wantEvents(want("b", 5, true)...)
}

// TestSenderSYN: with SYN on, the session's first TPDU carries OPT_SYN
// and no other does; a first message that fits one TPDU only without
// the option goes without it, unfragmented; a fragmented first message
// has it on its first fragment, 4 bytes shorter, when that costs no
// fragment more.
func TestSenderSYN(t *testing.T) {
	for _, tc := range []struct {
		name  string
		size  int
		syn   bool
		tpdus int
	}{
		{"small", 100, true, 1},
		{"one TPDU, full", 1448, false, 1},
		{"one TPDU, room for OPT_SYN", 1440, true, 1},
		{"fragmented", 3000, true, 3},
		{"fragmented, last fragment full", 1428 * 2, false, 2},
	} {
		h := startedTx(t, SenderConfig{SYN: true, FirstSeq: 77})
		h.send(make([]byte, tc.size))
		h.send([]byte("second"))
		var data []*wire.Packet
		for _, p := range h.pollAll() {
			if p.Type == wire.TypeODATA {
				data = append(data, p)
			}
		}
		if len(data) != tc.tpdus+1 {
			t.Fatalf("%s: %d ODATA", tc.name, len(data))
		}
		off := 0
		for i, p := range data {
			if p.SYN != (i == 0 && tc.syn) {
				t.Errorf("%s: ODATA %d (seq %d) SYN %v", tc.name, i, p.Seq, p.SYN)
			}
			if p.Len() > h.s.Config().MaxTPDU {
				t.Errorf("%s: ODATA %d of %d bytes", tc.name, i, p.Len())
			}
			if i < tc.tpdus && tc.tpdus > 1 {
				if !p.HasFragment || p.Fragment.Offset != uint32(off) || p.Fragment.First != 77 {
					t.Errorf("%s: fragment %d: %+v at offset %d", tc.name, i, p.Fragment, off)
				}
				off += len(p.Payload)
			}
		}
		if tc.tpdus > 1 && off != tc.size {
			t.Errorf("%s: fragments carry %d bytes", tc.name, off)
		}
		if tc.tpdus == 1 && data[0].HasFragment {
			t.Errorf("%s: a one-TPDU message fragmented", tc.name)
		}
	}
}

// TestReceiverRestartOtherDPort: a sender restarted with the same TSI
// that switched batching on (its session now goes to the batch dport) is
// a restart once two of its SPMs say so, live or after the old session's
// FIN, and its data is delivered; one SPM to the other dport, followed by
// one of the old session, is not enough; the old session's late packets
// stay dropped.
func TestReceiverRestartOtherDPort(t *testing.T) {
	bport := BatchDPort(testPort)
	batch := func(seq, trail uint32, msgs ...string) wire.Packet {
		var b []byte
		for _, m := range msgs {
			b = wire.AppendBatched(b, []byte(m))
		}
		return wire.Packet{Type: wire.TypeODATA, Seq: seq, Trail: trail, Batch: true, Payload: b}
	}
	spm := func(seq, trail, lead uint32) wire.Packet {
		return wire.Packet{Type: wire.TypeSPM, Seq: seq, Trail: trail, Lead: lead, PathNLA: testSrc}
	}

	t.Log("# live: the old session has a hole, the new one's SPMs go to the batch dport")
	x := newRxTest(t, ReceiverConfig{BatchDPort: bport})
	x.spm(0, 0, 0xFFFFFFFF, false)
	x.odata(0, 0, "old0")
	x.odata(2, 0, "old2")
	x.wantEvents("source-new", `data 0-0 "old0"`)
	x.packetTo(bport, spm(0, 100, 99))
	x.spm(1, 0, 2, false) // the old session again: the first one was a straggler or a forgery
	x.packetTo(bport, spm(1, 100, 99))
	x.wantEvents()
	x.packetTo(bport, spm(2, 100, 99))
	x.wantEvents("loss 1-1 n=1 source-restart", `data 2-2 "old2"`, fmt.Sprintf("restart from %v", testTSI))
	x.packetTo(bport, batch(100, 100, "a", "b"))
	x.odata(3, 0, "old3")                             // the old session's, late
	x.wantEvents(`data 100-100 "\x00\x01a\x00\x01b"`) // one event: Read splits batches

	t.Log("# after FIN: the first packet to the other dport starts the new session")
	x = newRxTest(t, ReceiverConfig{BatchDPort: bport})
	x.spm(0, 0, 0xFFFFFFFF, false)
	x.odata(0, 0, "old0")
	x.spm(1, 0, 0, true)
	x.wantEvents("source-new", `data 0-0 "old0"`, "gone fin")
	x.spm(2, 0, 0, true) // its late FIN SPM
	x.wantEvents()
	x.packetTo(bport, spm(0, 7, 6))
	x.packetTo(bport, batch(7, 7, "c"))
	x.spm(3, 0, 0, true) // still late, still dropped
	x.odata(0, 0, "old0")
	x.wantEvents(fmt.Sprintf("restart from %v", testTSI), `data 7-7 "\x00\x01c"`)
}
