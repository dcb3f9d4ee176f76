package interop

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/relmcast/relmcast/mcast"
)

// TestBatchInvisibleToOpenPGM: a batching Sender's session (another PGM
// dport, OPT_BATCH) never reaches an OpenPGM receiver as data. The
// receiver waits for 3 messages; first a batching Sender publishes 2000
// small messages and closes, then a plain one publishes the 3. OpenPGM
// must print exactly those 3, in order: nothing of the batches, neither
// as packed blobs nor as a source it resets on.
func TestBatchInvisibleToOpenPGM(t *testing.T) {
	tp := setup(t)
	bin := buildPGMPeer(t)
	const port = 7618
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rx := start(t, "pgmpeer recv", tp.inPeer(ctx, bin, "recv", "-i", tp.peerAddr.String(), "-g", group.String(),
		"-p", fmt.Sprint(port), "-n", "3", "-t", "60000", "-w", "16384"), nil)
	rx.expect(t, "ready", 10*time.Second)

	send := func(cfg mcast.Config, msgs [][]byte) mcast.SenderStats {
		t.Helper()
		cfg.Interface, cfg.Addr, cfg.Rate, cfg.Linger = tp.ifi, tp.addr, 50e6, 200*time.Millisecond
		s, err := mcast.NewSender(netip.AddrPortFrom(group, port), &cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if err := s.Send(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
		s.Close()
		return s.Stats()
	}
	var small [][]byte
	for i := range 2000 {
		small = append(small, fmt.Appendf(nil, "batched message %d", i))
	}
	st := send(mcast.Config{Batch: time.Millisecond}, small)
	if st.Messages != 2000 || st.ODATA >= 200 {
		t.Fatalf("batching sender: %d messages in %d ODATA", st.Messages, st.ODATA)
	}
	plain := [][]byte{[]byte("after one"), []byte("after two"), []byte("after three")}
	send(mcast.Config{}, plain)
	var want, got []string
	for _, m := range plain {
		want = append(want, fmt.Sprintf("data %d %s", len(m), fnv64(m)))
	}
	for len(got) < len(plain) {
		l := rx.line(t, 30*time.Second)
		if !strings.HasPrefix(l, "data ") {
			t.Fatalf("OpenPGM receiver after %d messages: %q", len(got), l)
		}
		got = append(got, l)
	}
	if err := errLine(got, want); err != nil {
		t.Fatalf("OpenPGM received other messages than the plain sender's: %v", err)
	}
	rx.expect(t, "done 3", 10*time.Second)
	if err := rx.wait(10 * time.Second); err != nil {
		t.Fatalf("pgmpeer recv: %v", err)
	}
	t.Logf("OpenPGM got only the plain session's 3 messages; the batching session's %d messages in %d packets never reached it", st.Messages, st.ODATA)
}
