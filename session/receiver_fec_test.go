package session

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/relmcast/relmcast/internal/wire"
)

// fecLink connects a Sender core to a Receiver core (rxTest) in memory,
// dropping the ODATA and parity packets named in dropData and dropParity
// (first transmission only: RDATA repairs pass), and records the NAKs.
type fecLink struct {
	t          *testing.T
	s          *Sender
	x          *rxTest
	dropData   map[uint32]bool
	dropParity map[uint32]bool
	naks       []string
	buf        []byte
}

func newFECLink(t *testing.T, fc FECConfig, rc ReceiverConfig) *fecLink {
	x := newRxTest(t, rc)
	s, err := NewSender(SenderConfig{TSI: testTSI, DPort: testPort, Group: testGroup, NLA: testSrc, FEC: fc}, x.now)
	if err != nil {
		t.Fatal(err)
	}
	return &fecLink{t: t, s: s, x: x, dropData: map[uint32]bool{}, dropParity: map[uint32]bool{}, buf: make([]byte, 0, 1500)}
}

// run moves packets both ways, 1 ms at a time, for d.
func (l *fecLink) run(d time.Duration) {
	l.t.Helper()
	end := l.x.now.Add(d)
	var p wire.Packet
	for !l.x.now.After(end) {
		now := l.x.now
		for {
			b, ok := l.s.Poll(now, l.buf[:0])
			if !ok {
				break
			}
			if err := wire.Parse(b, &p); err != nil {
				l.t.Fatal(err)
			}
			if p.Type == wire.TypeODATA && l.dropData[p.Seq] {
				continue
			}
			if p.Options&wire.OptParity != 0 && l.dropParity[p.Seq] {
				delete(l.dropParity, p.Seq)
				continue
			}
			l.x.r.HandlePacket(now, &p, testSrc)
		}
		l.x.r.Advance(now)
		l.x.deliver()
		for {
			b, _, ok := l.x.r.Poll(l.buf[:0])
			if !ok {
				break
			}
			if err := wire.Parse(b, &p); err != nil {
				l.t.Fatal(err)
			}
			if p.Type == wire.TypeNAK {
				var seqs []string
				for _, q := range p.NAKSeqs(nil) {
					seqs = append(seqs, fmt.Sprint(q))
				}
				kind := "N"
				if p.Options&wire.OptParity != 0 {
					kind = "PN"
				}
				l.naks = append(l.naks, kind+strings.Join(seqs, ","))
			}
			l.s.HandlePacket(now, &p, txPeer)
		}
		l.x.now = now.Add(time.Millisecond)
	}
}

func (l *fecLink) send(n int) []string {
	var want []string
	for i := range n {
		m := fmt.Sprintf("m%d", i)
		if err := l.s.Send(l.x.now, []byte(m)); err != nil {
			l.t.Fatal(err)
		}
		want = append(want, fmt.Sprintf("data %d-%d %q", i, i, m))
	}
	return want
}

// TestReceiverFECProactive: pro-active parity repairs up to h losses per
// group, the padding of the last group included, without a single NAK.
func TestReceiverFECProactive(t *testing.T) {
	l := newFECLink(t, FECConfig{GroupSize: 4, Proactive: 2}, ReceiverConfig{})
	for _, q := range []uint32{1, 2, 5, 9, 10} { // 10: padding
		l.dropData[q] = true
	}
	want := l.send(10)
	l.run(10 * time.Millisecond)
	l.s.Close(l.x.now)
	l.run(2 * time.Second)
	l.x.wantEvents(append(append([]string{"source-new"}, want...), "gone fin")...)
	st := l.x.r.Stats()
	if len(l.naks) != 0 || st.NAKPackets != 0 {
		t.Errorf("NAKs sent: %q", l.naks)
	}
	if st.FECRecovered != 5 || st.Repairs != 0 || st.Padding != 2 || st.FECParity != 6 {
		t.Errorf("stats %+v", st)
	}
}

// TestReceiverFECOnDemand: holes in complete groups are NAKed with one
// parity NAK per group, answered with fresh parity; the lead's incomplete
// group is NAKed selectively.
func TestReceiverFECOnDemand(t *testing.T) {
	l := newFECLink(t, FECConfig{GroupSize: 4, OnDemand: true}, ReceiverConfig{})
	for _, q := range []uint32{1, 2, 4, 9} {
		l.dropData[q] = true
	}
	want := l.send(10)
	l.run(500 * time.Millisecond)
	l.x.wantEvents(append([]string{"source-new"}, want...)...)
	if got := strings.Join(l.naks, " "); got != "PN1 PN4 N9" {
		t.Errorf("NAKs %s, want PN1 (2 of group 0) PN4 (1 of group 4) N9 (group 8 is incomplete)", got)
	}
	st := l.x.r.Stats()
	if st.FECRecovered != 3 || st.Repairs != 1 || st.ParityNAKs != 2 || st.NAKs != 1 || st.NAKPackets != 3 {
		t.Errorf("receiver stats %+v", st)
	}
	if ss := l.s.Stats(); ss.ParityOnDemand != 3 || ss.RDATA != 4 || ss.NCF != 3 {
		t.Errorf("sender stats %+v", ss)
	}
	// A lost parity packet: the receiver asks again for what it still needs.
	l.dropData = map[uint32]bool{12: true, 13: true}
	l.dropParity[12] = true // the first parity of group 12
	l.send(20)
	l.run(time.Second)
	if got := strings.Join(l.naks[3:], " "); got != "PN13 PN12" {
		t.Errorf("NAKs %s, want PN13 (2 packets) then PN12 (1 more); events %q", got, l.x.events)
	}
	if st := l.x.r.Stats(); st.FECRecovered != 5 || st.Messages != 30 {
		t.Errorf("receiver stats %+v", st)
	}
}

// TestReceiverFECHoldsNAK: with pro-active parity, a hole that parity does
// not cover is NAKed after one NAK interval, not at once.
func TestReceiverFECHoldsNAK(t *testing.T) {
	l := newFECLink(t, FECConfig{GroupSize: 4, Proactive: 1, OnDemand: true}, ReceiverConfig{})
	for _, q := range []uint32{1, 2} {
		l.dropData[q] = true
	}
	want := l.send(4)
	l.run(40 * time.Millisecond)
	if len(l.naks) != 0 {
		t.Fatalf("NAKed within the NAK interval: %q", l.naks)
	}
	l.run(200 * time.Millisecond)
	l.x.wantEvents(append([]string{"source-new"}, want...)...)
	if got := strings.Join(l.naks, " "); got != "PN0" {
		t.Errorf("NAKs %s, want PN0: 1 more parity packet", got)
	}
}

// TestReceiverFECPassive: a passive receiver decodes pro-active parity and
// reports the rest lost.
func TestReceiverFECPassive(t *testing.T) {
	l := newFECLink(t, FECConfig{GroupSize: 4, Proactive: 1}, ReceiverConfig{Passive: true})
	for _, q := range []uint32{1, 2, 6} {
		l.dropData[q] = true
	}
	l.send(8)
	l.run(2 * time.Second)
	l.x.wantEvents("source-new", `data 0-0 "m0"`, "loss 1-2 n=2 retries-exhausted", `data 3-3 "m3"`,
		`data 4-4 "m4"`, `data 5-5 "m5"`, `data 6-6 "m6"`, `data 7-7 "m7"`)
	if st := l.x.r.Stats(); st.NAKPackets != 0 || st.FECRecovered != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestReceiverFECParityIgnored: parity from a source without FEC, or
// before its SPM, is dropped, never taken as data.
func TestReceiverFECParityIgnored(t *testing.T) {
	x := newRxTest(t, ReceiverConfig{})
	parity := wire.Packet{Type: wire.TypeRDATA, Options: wire.OptParity, Seq: 0, Payload: []byte("xx")}
	x.packet(parity)
	x.odata(0, 0, "a")
	x.packet(parity)
	x.wantEvents("source-new", `data 0-0 "a"`)
	if st := x.r.Stats(); st.Dropped != 2 || st.Duplicates != 0 {
		t.Errorf("stats %+v", st)
	}
	// The decoder follows the group size of the SPMs.
	x.packet(wire.Packet{Type: wire.TypeSPM, Seq: 1, Lead: 0, PathNLA: testSrc, HasParityPrm: true,
		ParityPrm: wire.ParityPrm{Proactive: true, GroupSize: 4}})
	s := x.r.byTSI[testTSI]
	if s.fec == nil || s.fec.k != 4 || !s.fec.proactive {
		t.Fatalf("fec %+v", s.fec)
	}
	x.packet(wire.Packet{Type: wire.TypeSPM, Seq: 2, Lead: 0, PathNLA: testSrc, HasParityPrm: true,
		ParityPrm: wire.ParityPrm{OnDemand: true, GroupSize: 8}})
	if s.fec.k != 8 || s.fec.proactive || !s.fec.onDemand {
		t.Fatalf("fec %+v", s.fec)
	}
}

func TestReceiverFECAllocs(t *testing.T) {
	l := newFECLink(t, FECConfig{GroupSize: 16, Proactive: 2}, ReceiverConfig{})
	var err error
	l.s, err = NewSender(SenderConfig{TSI: testTSI, DPort: testPort, Group: testGroup, NLA: testSrc,
		WindowPackets: 64, WindowTime: time.Hour, FEC: FECConfig{GroupSize: 16, Proactive: 2}}, l.x.now)
	if err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 1000)
	var p wire.Packet
	step := func() {
		if err := l.s.Send(l.x.now, payload); err != nil {
			t.Fatal(err)
		}
		for {
			b, ok := l.s.Poll(l.x.now, l.buf[:0])
			if !ok {
				break
			}
			if err := wire.Parse(b, &p); err != nil {
				t.Fatal(err)
			}
			if p.Type == wire.TypeODATA && p.Seq%16 == 5 {
				continue // one loss per group, rebuilt from parity
			}
			l.x.r.HandlePacket(l.x.now, &p, testSrc)
		}
		l.x.r.Deliver(func(*Event) bool { return true })
	}
	for range 5000 {
		step()
	}
	if n := testing.AllocsPerRun(1000, step); n != 0 {
		t.Fatalf("%v allocations per message", n)
	}
	if st := l.x.r.Stats(); st.FECRecovered < 300 || st.Messages < 6000 {
		t.Fatalf("stats %+v", st)
	}
}

// BenchmarkFECLoss5: the CPU cost per message of both cores together (a
// Sender feeding a Receiver, NAKs and repairs included) at 5% random loss
// of data packets, parity and repairs included, without FEC and with FEC.
func BenchmarkFECLoss5(b *testing.B) {
	for _, bc := range []struct {
		name string
		fc   FECConfig
	}{
		{"off", FECConfig{}},
		{"proactive16:2", FECConfig{GroupSize: 16, Proactive: 2}},
		{"ondemand32", FECConfig{GroupSize: 32, OnDemand: true}},
		{"both16:2", FECConfig{GroupSize: 16, Proactive: 2, OnDemand: true}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := NewReceiver(ReceiverConfig{DPort: testPort, Group: testGroup, Seed: 1})
			now := time.Unix(1000, 0)
			s, err := NewSender(SenderConfig{TSI: testTSI, DPort: testPort, Group: testGroup, NLA: testSrc,
				WindowPackets: 4096, FEC: bc.fc}, now)
			if err != nil {
				b.Fatal(err)
			}
			rng := uint64(1)
			lose := func() bool { // xorshift: 5%
				rng ^= rng << 13
				rng ^= rng >> 7
				rng ^= rng << 17
				return rng%100 < 5
			}
			payload := make([]byte, 1000)
			buf := make([]byte, 0, 1500)
			var p wire.Packet
			msgs := 0
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if err := s.Send(now, payload); err != nil {
					b.Fatal(err)
				}
				if i%64 != 63 {
					continue
				}
				// Every 64 messages: 1 ms passes, packets go both ways.
				for {
					out, ok := s.Poll(now, buf[:0])
					if !ok {
						break
					}
					if wire.Parse(out, &p) != nil {
						b.Fatal("parse")
					}
					if (p.Type == wire.TypeODATA || p.Type == wire.TypeRDATA) && lose() {
						continue
					}
					r.HandlePacket(now, &p, testSrc)
				}
				r.Advance(now)
				r.Deliver(func(e *Event) bool {
					if e.Kind == EventData {
						msgs++
					}
					return true
				})
				for {
					out, _, ok := r.Poll(buf[:0])
					if !ok {
						break
					}
					if wire.Parse(out, &p) == nil {
						s.HandlePacket(now, &p, txPeer)
					}
				}
				now = now.Add(time.Millisecond)
			}
			st := s.Stats()
			b.ReportMetric(float64(st.ODATA+st.RDATA)/float64(max(st.ODATA, 1)), "pkts/orig")
			b.ReportMetric(float64(r.Stats().NAKPackets)/float64(max(msgs, 1))*1000, "NAKs/kmsg")
		})
	}
}
