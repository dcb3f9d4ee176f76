package interop

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/relmcast/relmcast/internal/lossy"
	"github.com/relmcast/relmcast/internal/wire"
	"github.com/relmcast/relmcast/mcast"
)

// buildPGMPeer compiles peers/pgmpeer.c against libpgm.
func buildPGMPeer(t *testing.T) string {
	t.Helper()
	return buildPeer(t, "pgmpeer", "openpgm-5.3", "libpgm-dev")
}

// TestOurSenderToOpenPGM: our Sender publishes single-packet and
// fragmented messages (at most 16 fragments: OpenPGM's limit) to an
// OpenPGM receiver while the peer namespace drops every 20th data packet
// (ODATA, RDATA) that comes in. Every message must arrive, whole and in order, and OpenPGM's
// NAKs must have been answered by our NCFs and RDATA.
func TestOurSenderToOpenPGM(t *testing.T) {
	tp := setup(t)
	bin := buildPGMPeer(t)
	const (
		port  = 7611
		count = 1500
	)
	drops := tp.dropIntoPeer(t, port, 20)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rx := start(t, "pgmpeer recv", tp.inPeer(ctx, bin, "recv", "-i", tp.peerAddr.String(), "-g", group.String(),
		"-p", fmt.Sprint(port), "-n", fmt.Sprint(count), "-t", "90000", "-w", "16384"), nil)
	rx.expect(t, "ready", 10*time.Second)

	s, err := mcast.NewSender(netip.AddrPortFrom(group, port), &mcast.Config{
		Interface: tp.ifi, Addr: tp.addr, Rate: 50e6, Linger: 500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// One message in 8 is fragmented, up to 16 fragments; the others fit
	// one packet (the empty message included).
	rnd := rand.New(rand.NewPCG(1, 2))
	maxFrag := s.MaxPacketPayload() - wire.FragmentOverhead
	var want []string
	frags, most := 0, 0
	for i := range count {
		n := rnd.IntN(s.MaxPacketPayload() + 1)
		if i%8 == 5 {
			n = s.MaxPacketPayload() + 1 + rnd.IntN(16*maxFrag-s.MaxPacketPayload())
			frags++
			most = max(most, (n+maxFrag-1)/maxFrag)
		}
		m := make([]byte, n)
		for j := range m {
			m[j] = byte(rnd.Uint32())
		}
		want = append(want, fmt.Sprintf("data %d %s", n, fnv64(m)))
		if err := s.Send(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for len(got) < count {
		l := rx.line(t, 60*time.Second)
		if !strings.HasPrefix(l, "data ") {
			t.Fatalf("OpenPGM receiver after %d messages: %q (unrecoverable loss)", len(got), l)
		}
		got = append(got, l)
	}
	if err := errLine(got, want); err != nil {
		t.Fatalf("OpenPGM received other messages than we sent: %v", err)
	}
	rx.expect(t, fmt.Sprintf("done %d", count), 10*time.Second)
	if err := rx.wait(10 * time.Second); err != nil {
		t.Fatalf("pgmpeer recv: %v", err)
	}
	st := s.Stats()
	t.Logf("OpenPGM received all %d messages (%d fragmented, up to %d fragments) in order; %d packets dropped into it; our sender: %d ODATA, %d NAKs (%d sqns) -> %d NCFs, %d RDATA",
		count, frags, most, drops(), st.ODATA, st.NAKs, st.NAKSeqs, st.NCF, st.RDATA)
	if most != 16 {
		t.Errorf("the largest message took %d fragments; the test means to reach OpenPGM's limit, 16", most)
	}
	if drops() == 0 || st.NAKs == 0 || st.NCF == 0 || st.RDATA == 0 {
		t.Errorf("want loss answered by NAK, NCF and RDATA: drops %d, NAKs %d, NCFs %d, RDATA %d", drops(), st.NAKs, st.NCF, st.RDATA)
	}
	if st.BadNAKs != 0 {
		t.Errorf("%d NAKs from OpenPGM were rejected", st.BadNAKs)
	}
}

// pgmNumbered is pgmpeer's message i (see peers/pgmpeer.c).
func pgmNumbered(i, minSize, maxSize int) []byte {
	n := minSize + (i*7919)%(maxSize-minSize+1)
	b := make([]byte, n)
	binary.BigEndian.PutUint64(b, uint64(i))
	for j := 8; j < n; j++ {
		b[j] = byte(i*31 + j*7)
	}
	return b
}

// receiveAll reads events until the source is gone, a stray source
// appears, or d passes.
func receiveAll(t *testing.T, r *mcast.Receiver, d time.Duration) []mcast.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var evs []mcast.Event
	for {
		var ev mcast.Event
		if err := r.Read(ctx, &ev); err != nil {
			t.Fatalf("after %d events: %v", len(evs), err)
		}
		evs = append(evs, ev)
		if ev.Kind == mcast.EventSourceGone {
			return evs
		}
	}
}

// checkPGMStream checks the events of one pgmpeer source: source new,
// pgmpeer's numbered messages 0..count-1 except those in holes, which
// must be reported lost exactly where they are (by the given reason), and
// source gone by FIN.
func checkPGMStream(t *testing.T, evs []mcast.Event, count int, holes [][2]uint32, reason mcast.LossReason) {
	t.Helper()
	if len(evs) == 0 || evs[0].Kind != mcast.EventSourceNew {
		t.Fatalf("first event %v, want source new", evs)
	}
	i := 0
	hole := 0
	for _, ev := range evs[1 : len(evs)-1] {
		switch {
		case hole < len(holes) && uint32(i) == holes[hole][0]:
			if ev.Kind != mcast.EventLoss || ev.Seq != holes[hole][0] || ev.LastSeq != holes[hole][1] || ev.LossReason != reason {
				t.Fatalf("at message %d: %v, want the loss of %d-%d, %v", i, &ev, holes[hole][0], holes[hole][1], reason)
			}
			i = int(holes[hole][1]) + 1
			hole++
		case ev.Kind != mcast.EventData || ev.Seq != uint32(i):
			t.Fatalf("at message %d: %v", i, &ev)
		case !bytes.Equal(ev.Data, pgmNumbered(i, 8, 1400)):
			t.Fatalf("message %d: wrong content (%d bytes)", i, len(ev.Data))
		default:
			i++
		}
	}
	if i != count || hole != len(holes) {
		t.Fatalf("stream ended at message %d of %d, after %d of %d holes", i, count, hole, len(holes))
	}
	last := evs[len(evs)-1]
	if last.Kind != mcast.EventSourceGone || last.GoneReason != mcast.GoneFIN {
		t.Fatalf("last event %v, want source gone by FIN", &last)
	}
}

// lossyWrap returns a WrapTransport that applies cfg to what our receiver
// reads, and the wrapped transport, to read its counters afterwards.
func lossyWrap(cfg lossy.Config) (func(mcast.Transport) mcast.Transport, **lossy.Conn) {
	var c *lossy.Conn
	return func(tr mcast.Transport) mcast.Transport {
		c = lossy.Wrap(tr, cfg)
		return c
	}, &c
}

// TestOpenPGMSenderToOurReceiver: an OpenPGM sender publishes numbered
// messages; our receiver drops 5% of the data, NCFs and repairs it reads
// (SPMs pass, so that the FIN always arrives), NAKs what it misses, and
// OpenPGM repairs everything. pgm_close(sock, TRUE) ends the session with
// FIN SPMs: our source-gone event.
func TestOpenPGMSenderToOurReceiver(t *testing.T) {
	tp := setup(t)
	bin := buildPGMPeer(t)
	const (
		port  = 7612
		count = 3000
	)
	wrap, lc := lossyWrap(lossy.Config{Loss: 0.05, Seed: 7, Filter: func(b []byte) bool {
		return len(b) > 4 && wire.Type(b[4]) != wire.TypeSPM
	}})
	r, err := mcast.Listen(netip.AddrPortFrom(group, port), &mcast.Config{
		Interface: tp.ifi, Addr: tp.addr, SourceExpiry: 2 * time.Minute, WrapTransport: wrap,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tx := start(t, "pgmpeer send", tp.inPeer(ctx, bin, "send", "-i", tp.peerAddr.String(), "-g", group.String(),
		"-p", fmt.Sprint(port), "-n", fmt.Sprint(count), "-w", "4096", "-r", "2000000", "-l", "2000", "-t", "60000"), nil)
	evs := receiveAll(t, r, 90*time.Second)
	checkPGMStream(t, evs, count, nil, 0)
	if err := tx.wait(30 * time.Second); err != nil {
		t.Fatalf("pgmpeer send: %v", err)
	}
	st := r.Stats()
	ls := (*lc).Stats()
	t.Logf("all %d messages from OpenPGM in order, then source gone (fin); we dropped %d of %d packets and sent %d NAKs (%d sqns), got %d NCFs and %d repairs",
		count, ls.Dropped, ls.Datagrams, st.NAKPackets, st.NAKs, st.NCFs, st.Repairs)
	if ls.Dropped == 0 || st.NAKPackets == 0 || st.NCFs == 0 || st.Repairs == 0 {
		t.Errorf("want loss repaired after NAKs and NCFs: dropped %d, NAKs %d, NCFs %d, repairs %d", ls.Dropped, st.NAKPackets, st.NCFs, st.Repairs)
	}
}

// TestOpenPGMWindowPassed: an OpenPGM sender with a 50-packet transmit
// window; our receiver drops some packets permanently (their ODATA and
// every RDATA). By the time our NAKs are answered the window has moved
// on, and each hole must become a loss event (window-passed) exactly
// where it is, between the messages around it; then FIN, source gone.
func TestOpenPGMWindowPassed(t *testing.T) {
	tp := setup(t)
	bin := buildPGMPeer(t)
	const (
		port  = 7613
		count = 2000
	)
	holes := [][2]uint32{{100, 100}, {500, 502}, {1500, 1500}}
	dropped := func(q uint32) bool {
		for _, h := range holes {
			if q >= h[0] && q <= h[1] {
				return true
			}
		}
		return false
	}
	wrap, lc := lossyWrap(lossy.Config{Loss: 1, Filter: func(b []byte) bool {
		typ := wire.Type(b[4])
		return len(b) >= 24 && (typ == wire.TypeODATA || typ == wire.TypeRDATA) && dropped(binary.BigEndian.Uint32(b[16:]))
	}})
	r, err := mcast.Listen(netip.AddrPortFrom(group, port), &mcast.Config{
		Interface: tp.ifi, Addr: tp.addr, SourceExpiry: 2 * time.Minute, WrapTransport: wrap,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tx := start(t, "pgmpeer send", tp.inPeer(ctx, bin, "send", "-i", tp.peerAddr.String(), "-g", group.String(),
		"-p", fmt.Sprint(port), "-n", fmt.Sprint(count), "-w", "50", "-r", "2000000", "-l", "1000", "-t", "60000"), nil)
	evs := receiveAll(t, r, 90*time.Second)
	checkPGMStream(t, evs, count, holes, mcast.LossWindowPassed)
	if err := tx.wait(30 * time.Second); err != nil {
		t.Fatalf("pgmpeer send: %v", err)
	}
	st := r.Stats()
	t.Logf("%d messages from OpenPGM; holes %v (%d packets dropped for good, RDATA included) reported lost (window-passed) in place; %d NAKs, %d NCFs; then source gone (fin)",
		count-5, holes, (*lc).Stats().Dropped, st.NAKPackets, st.NCFs)
	if st.LossEvents != uint64(len(holes)) || st.Lost != 5 {
		t.Errorf("%d loss events, %d lost; want %d and 5", st.LossEvents, st.Lost, len(holes))
	}
}
