package session

// Hostile input against the sender core (issue 6): NAK floods from
// spoofed addresses, NAKs for data no longer held, SPMR floods.

import (
	"net/netip"
	"testing"
	"time"

	"github.com/relmcast/relmcast/internal/wire"
)

// txFilled returns a started sender that has sent n messages of size
// bytes and holds all of them (no heartbeat or ambient SPMs: only what
// the test provokes is sent).
func txFilled(t *testing.T, cfg SenderConfig, n, size int) *txHarness {
	t.Helper()
	if cfg.WindowPackets == 0 {
		cfg.WindowPackets = n
	}
	cfg.WindowTime = time.Hour
	cfg.Heartbeat, cfg.AmbientSPM = []time.Duration{}, time.Hour
	h := startedTx(t, cfg)
	for i := range n {
		h.send(txMsg(size, byte(i)))
	}
	for i := 0; h.s.Stats().Queued > 0; i++ {
		if i > 1e6 {
			t.Fatal("ODATA never all sent")
		}
		h.pollAll()
		if d := h.s.NextDeadline(); d.After(h.now) && h.s.Stats().Queued > 0 {
			h.now = d // the rate limiter lets the next one go
		}
	}
	if trail, lead := h.s.Window(); int(lead-trail+1) != min(n, cfg.WindowPackets) {
		t.Fatalf("window %d..%d after %d messages", trail, lead, n)
	}
	return h
}

// floodStats is what a NAK flood got out of the sender.
type floodStats struct {
	naks, ncf, rdata, odata int
	ncfSeqs                 int
	rdataBytes, ncfBytes    int64 // IP overhead included for NCFs
}

// nakFlood NAKs the whole window [trail, lead] from spoofed addresses
// every millisecond for d, polling everything due as it goes. It fails
// if a sequence number is repaired twice within the NAK elimination
// interval, or if the repairs exceed the rate limit (burst plus rate
// times the time elapsed, IP overhead included); or if a sequence number
// is confirmed more than once per interval, or NCFs exceed NCFRate.
func nakFlood(t *testing.T, h *txHarness, d time.Duration) floodStats {
	t.Helper()
	cfg := h.s.Config()
	var st floodStats
	lastRepair := map[uint32]time.Time{}
	ncfs := map[uint32]int{}
	maxNCFs := int(d/cfg.NAKElim) + 1
	start := h.now
	var charged int64 // RDATA+ODATA bytes on the wire, IP overhead included
	for step := time.Duration(0); step < d; step += time.Millisecond {
		trail, lead := h.s.Window()
		if lead+1 == trail {
			t.Fatal("empty window")
		}
		for first, i := trail, 0; first-trail <= lead-trail; first, i = first+wire.MaxNAKSeqs, i+1 {
			p := txNAK(first)
			for q := first + 1; q-first < wire.MaxNAKSeqs && q-trail <= lead-trail; q++ {
				p.NAKList[p.NAKListLen] = q
				p.NAKListLen++
			}
			from := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 9, byte(i), byte(step)}), txDPort)
			h.s.HandlePacket(h.now, mustParseTx(t, p), from)
			st.naks++
		}
		for _, p := range h.pollAll() {
			switch p.Type {
			case wire.TypeNCF:
				st.ncf++
				st.ncfBytes += int64(p.Len() + cfg.IPOverhead)
				for _, q := range p.NAKSeqs(nil) {
					// Confirmed when the NAK came, sent when NCFRate let it:
					// once per interval counts, not spacing.
					if ncfs[q]++; ncfs[q] > maxNCFs {
						t.Fatalf("sqn %d confirmed %d times in %v (NAKElim %v)", q, ncfs[q], d, cfg.NAKElim)
					}
					st.ncfSeqs++
				}
			case wire.TypeRDATA:
				st.rdata++
				if last, ok := lastRepair[p.Seq]; ok && h.now.Sub(last) < cfg.NAKElim {
					t.Fatalf("sqn %d repaired again after %v (NAKElim %v)", p.Seq, h.now.Sub(last), cfg.NAKElim)
				}
				lastRepair[p.Seq] = h.now
				n := int64(p.Len())
				st.rdataBytes += n
				charged += n + int64(cfg.IPOverhead)
			case wire.TypeODATA:
				st.odata++
				charged += int64(p.Len() + cfg.IPOverhead)
			}
		}
		if allowed := int64(max(cfg.NCFRate/50, 16*txNCFMax)) + cfg.NCFRate*int64(h.now.Sub(start))/int64(time.Second); st.ncfBytes > allowed {
			t.Fatalf("after %v: %d NCF bytes sent, NCFRate allows %d", h.now.Sub(start), st.ncfBytes, allowed)
		}
		if cfg.Rate > 0 {
			if allowed := int64(cfg.Burst) + cfg.Rate*int64(h.now.Sub(start))/int64(time.Second); charged > allowed {
				t.Fatalf("after %v: %d bytes sent, rate limit allows %d", h.now.Sub(start), charged, allowed)
			}
		}
		h.advance(time.Millisecond)
	}
	return st
}

func mustParseTx(t testing.TB, p wire.Packet) *wire.Packet {
	t.Helper()
	b, err := p.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	q := new(wire.Packet)
	if err := wire.Parse(b, q); err != nil {
		t.Fatal(err)
	}
	return q
}

// TestAttackNAKFlood: NAKs for the whole window, every millisecond, from
// spoofed addresses. Each sequence number is confirmed by NCF at most
// once per NAK elimination interval, and the NCFs stay within NCFRate
// (never more NCFs than NAKs: not amplified); each sequence number gets
// at most one repair per NAK elimination interval; and the repairs stay
// within the rate limit, of which new data keeps half.
func TestAttackNAKFlood(t *testing.T) {
	const window, size = 1000, 1000
	const flood = time.Second
	for _, tc := range []struct {
		name string
		rate int64 // bytes per second; 0: unlimited
	}{
		{"10Mbit/s", 1_250_000},
		{"unlimited", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := txFilled(t, SenderConfig{Rate: tc.rate}, window, size)
			// New data offered all along: what gets through the flood?
			for i := range 2000 {
				h.send(txMsg(size, byte(i)))
			}
			st := nakFlood(t, h, flood)
			s := h.s.Stats()
			t.Logf("%v of NAKs for all %d packets of the window: NAKs in %d/s (%d sqns/s); out NCF %d/s (%d sqns, %d bytes/s, NCFRate %d), RDATA %d/s (%d bytes/s), ODATA %d; eliminated %d repairs, %d NCF sqns; %d NCFs dropped",
				flood, window, st.naks, s.NAKSeqs, st.ncf, st.ncfSeqs, st.ncfBytes, h.s.Config().NCFRate,
				st.rdata, st.rdataBytes, st.odata, s.NAKsEliminated, s.NCFsEliminated, s.NCFsDropped)
			elimN := int(flood/h.s.Config().NAKElim) + 1
			if st.ncf > st.naks || st.ncfSeqs > window*elimN {
				t.Errorf("%d NCFs (%d sqns) for %d NAKs", st.ncf, st.ncfSeqs, st.naks)
			}
			elim := int(flood / h.s.Config().NAKElim)
			if st.rdata > window*(elim+1) {
				t.Errorf("%d repairs: more than one per sqn per %v", st.rdata, h.s.Config().NAKElim)
			}
			if tc.rate > 0 && st.rdataBytes > tc.rate*int64(flood/time.Second)+int64(h.s.Config().Burst) {
				t.Errorf("%d repair bytes in %v at %d bytes/s", st.rdataBytes, flood, tc.rate)
			}
			if tc.rate > 0 && st.odata < st.rdata-1 {
				t.Errorf("the flood starved new data: %d ODATA, %d RDATA", st.odata, st.rdata)
			}
		})
	}
}

// TestAttackNAKOutsideWindow: NAKs for data no longer held (or never
// sent) are answered by an NCF only, and counted with the last sender.
func TestAttackNAKOutsideWindow(t *testing.T) {
	h := txFilled(t, SenderConfig{WindowPackets: 10}, 30, 100)
	trail, lead := h.s.Window()
	spoof := netip.MustParseAddrPort("203.0.113.9:7500")
	for _, seqs := range [][]uint32{
		{0, 1, 2, 3},           // evicted long ago
		{trail - 1},            // just evicted
		{lead + 1, lead + 100}, // not sent yet
		{lead + 1<<31},         // half the sequence space away
	} {
		p := txNAK(seqs...)
		h.s.HandlePacket(h.now, mustParseTx(t, p), spoof)
	}
	got := types(h.pollAll())
	if got != "NCF NCF NCF NCF" {
		t.Fatalf("sent %s", got)
	}
	s := h.s.Stats()
	if s.NAKsOutsideWindow != 8 || s.RDATA != 0 || s.LastOutsideNAKer != spoof {
		t.Fatalf("stats %+v", s)
	}
}

// TestAttackSPMRFlood: ten thousand SPMRs in a second get at most one
// SPM per 10 ms.
func TestAttackSPMRFlood(t *testing.T) {
	h := txFilled(t, SenderConfig{}, 10, 100)
	spmr := wire.Packet{Type: wire.TypeSPMR, SPort: txDPort, DPort: txTSI.Port, GSI: txTSI.GSI}
	p := mustParseTx(t, spmr)
	spms := 0
	for i := range 10000 {
		h.s.HandlePacket(h.now, p, netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 8, byte(i >> 8), byte(i)}), txDPort))
		for _, q := range h.pollAll() {
			if q.Type == wire.TypeSPM {
				spms++
			}
		}
		h.advance(100 * time.Microsecond)
	}
	t.Logf("10000 SPMRs/s: %d SPMs/s", spms)
	if spms > 101 || spms < 90 {
		t.Fatalf("%d SPMs for 10000 SPMRs in 1s", spms)
	}
}
