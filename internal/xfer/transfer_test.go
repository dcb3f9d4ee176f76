package xfer

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/relmcast/relmcast/mcast"
	"github.com/relmcast/relmcast/mcast/mcasttest"
)

var group = netip.MustParseAddrPort("239.192.0.1:7500")

// transfer is one run of files from one Sender to one Receiver over an
// in-memory network.
type transfer struct {
	sizes   []int
	rxLoss  string                        // receiver's impairment
	rxCfg   func(*mcast.Config)           // adjusts the Receiver's Config
	txDrop  func(mcasttest.Datagram) bool // drop rule at the Sender (NAKs)
	results []Result
	dir     string
	files   [][]byte // contents sent
}

// run sends t.sizes as files of random content and feeds the receiver's
// events to an xfer.Receiver until the source is gone. Time is fake
// (synctest), so repair timers cost nothing.
func (tr *transfer) run(t *testing.T) {
	tr.dir = t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		nw := mcasttest.NewNetwork(mcasttest.NetworkConfig{Seed: 7})
		defer nw.Close()
		rxEP := nw.Endpoint(netip.MustParseAddr("198.18.0.2"), group.Port())
		rxEP.Join(group)
		if tr.rxLoss != "" {
			imp, err := mcasttest.ParseImpairment(tr.rxLoss)
			if err != nil {
				t.Fatal(err)
			}
			rxEP.SetImpairment(imp)
		}
		txEP := nw.Endpoint(netip.MustParseAddr("198.18.0.1"), group.Port())
		if tr.txDrop != nil {
			txEP.SetDrop(tr.txDrop)
		}
		rcfg := mcast.Config{Transport: rxEP, Seed: 3}
		if tr.rxCfg != nil {
			tr.rxCfg(&rcfg)
		}
		r, err := mcast.Listen(group, &rcfg)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		src := t.TempDir()
		xr := &Receiver{Dir: tr.dir, Done: func(res Result) { tr.results = append(tr.results, res) }}
		rxDone := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			var ev mcast.Event
			for {
				if err := r.Read(ctx, &ev); err != nil {
					rxDone <- err
					return
				}
				xr.Handle(&ev)
				if ev.Kind == mcast.EventSourceGone {
					rxDone <- nil
					return
				}
			}
		}()

		s, err := mcast.NewSender(group, &mcast.Config{Transport: txEP, Linger: 2 * time.Second, Seed: 5})
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(1, 2))
		ctx := context.Background()
		for i, n := range tr.sizes {
			b := make([]byte, n)
			for j := range b {
				b[j] = byte(rng.Uint32())
			}
			tr.files = append(tr.files, b)
			p := filepath.Join(src, "f"+string(rune('a'+i)))
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := SendFile(ctx, p, s.MaxPacketPayload()-DataOverhead, s.Send, nil); err != nil {
				t.Fatal(err)
			}
		}
		s.Close()
		if err := <-rxDone; err != nil {
			t.Fatal(err)
		}
		xr.Close()
	})
}

// TestTransfer: files of 0, 1, one packet, one packet + 1 and 8 MB bytes
// arrive exactly, with 5% of the packets lost and repaired.
func TestTransfer(t *testing.T) {
	const onePacket = 1448 - DataOverhead // content of a full packet at MTU 1500
	for _, tc := range []struct {
		name string
		loss string
	}{{"clean", ""}, {"loss", "loss=0.05,seed=11"}} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &transfer{sizes: []int{0, 1, onePacket, onePacket + 1, 8 << 20, 3}, rxLoss: tc.loss}
			tr.run(t)
			if len(tr.results) != len(tr.sizes) {
				t.Fatalf("%d results: %+v", len(tr.results), tr.results)
			}
			for i, res := range tr.results {
				name := "f" + string(rune('a'+i))
				if res.Err != nil || res.Header.Name != name || res.Path != filepath.Join(tr.dir, name) {
					t.Errorf("file %d (%d bytes): %+v", i, tr.sizes[i], res)
					continue
				}
				got, err := os.ReadFile(res.Path)
				if err != nil || !bytes.Equal(got, tr.files[i]) {
					t.Errorf("file %d: %d bytes, %v; want %d bytes exactly", i, len(got), err, tr.sizes[i])
				}
			}
		})
	}
}

// TestTransferUnrecoverable: with the receiver's NAKs never answered, a
// hole in the file cannot be repaired: the file is reported failed (a
// loss) and nothing is written.
func TestTransferUnrecoverable(t *testing.T) {
	tr := &transfer{
		sizes:  []int{200 << 10},
		rxLoss: "loss=0.05,seed=4",
		rxCfg:  func(c *mcast.Config) { c.NAKRetries = 2 },
		txDrop: func(mcasttest.Datagram) bool { return true }, // every NAK and SPMR
	}
	tr.run(t)
	if len(tr.results) != 1 || !errors.Is(tr.results[0].Err, ErrLoss) || tr.results[0].Path != "" {
		t.Fatalf("results %+v", tr.results)
	}
	t.Logf("%v", tr.results[0].Err)
	if es, _ := os.ReadDir(tr.dir); len(es) != 0 {
		t.Errorf("directory not empty: %v", es)
	}
}
