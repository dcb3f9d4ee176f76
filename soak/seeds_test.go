package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/relmcast/relmcast/internal/wire"
	"github.com/relmcast/relmcast/mcast"
	"github.com/relmcast/relmcast/mcast/mcasttest"
)

var capture = flag.Bool("capture", false, "write the captured traffic as seeds into ../session/testdata/fuzz")

// captured is one datagram read by an endpoint, or one message sent.
type captured struct {
	at   time.Time
	b    []byte
	send int // message size, for a Send; b is nil
}

// recorder wraps a transport and records every datagram it reads.
type recorder struct {
	mcast.Transport
	log *[]captured
}

func (r recorder) ReadBatch(ds []mcast.Datagram) (int, error) {
	n, err := r.Transport.ReadBatch(ds)
	for _, d := range ds[:n] {
		*r.log = append(*r.log, captured{at: time.Now(), b: append([]byte(nil), d.Buf[:d.N]...)})
	}
	return n, err
}

// The fuzzed sender core (session.FuzzSenderWire) has this TSI and NLA,
// so that the NAKs captured here are valid for it.
var (
	seedGSI  = [6]byte{0x52, 0x4d, 0x43, 0x53, 0x45, 0x45}
	seedPort = uint16(4000)
)

// Fuzz record operations (session/hardening_fuzz_test.go).
const (
	fzDatagram = 0
	fzTime     = 2
	fzRead     = 3
	fzReadAll  = 4
)

// TestCaptureFuzzSeeds runs a sender and a receiver (10% loss) over the
// in-memory network, with messages of mixed sizes, records what each end
// reads, and turns it into seeds for the session fuzz targets: the
// receiver's datagrams (SPM, ODATA with and without fragments, NCF, RDATA,
// FIN) for FuzzReceiverWire, the sender's (NAKs, SPMRs) with the sends
// for FuzzSenderWire. With -capture it writes them into
// ../session/testdata/fuzz; without, it checks that the capture has the
// packet types the seeds need.
func TestCaptureFuzzSeeds(t *testing.T) {
	var rxLog, txLog, sends []captured
	var start time.Time
	synctest.Test(t, func(t *testing.T) {
		start = time.Now()
		nw := mcasttest.NewNetwork(mcasttest.NetworkConfig{Latency: time.Millisecond, Seed: 1})
		defer nw.Close()
		group := netip.MustParseAddrPort("239.192.0.1:7500")
		rep := nw.Endpoint(netip.MustParseAddr("10.0.1.1"), 0)
		rep.Join(group)
		rep.SetImpairment(mcasttest.Impairment{Loss: 0.1, Seed: 3})
		r, err := mcast.Listen(group, &mcast.Config{Transport: rep, Seed: 1,
			WrapTransport: func(tr mcast.Transport) mcast.Transport { return recorder{tr, &rxLog} }})
		if err != nil {
			t.Fatal(err)
		}
		sep := nw.Endpoint(netip.MustParseAddr("10.0.0.1"), group.Port())
		s, err := mcast.NewSender(group, &mcast.Config{Transport: sep, GSI: seedGSI, SourcePort: seedPort,
			Linger: 500 * time.Millisecond, Seed: 2,
			WrapTransport: func(tr mcast.Transport) mcast.Transport { return recorder{tr, &txLog} }})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan int)
		go func() {
			var ev mcast.Event
			n := 0
			for ev.Kind != mcast.EventSourceGone {
				if r.Read(context.Background(), &ev) != nil {
					break
				}
				n++
			}
			done <- n
		}()
		for i := range 120 {
			size := 10 + i*37%300
			if i%7 == 3 {
				size = 3000 + i // 3 fragments
			}
			sends = append(sends, captured{at: time.Now(), send: size})
			msg := make([]byte, size) // printable: the seed files stay small
			for k := range msg {
				msg[k] = 'a' + byte((i+k)%26)
			}
			s.Send(context.Background(), msg)
			time.Sleep(2 * time.Millisecond)
		}
		s.Close()
		<-done
		r.Close()
	})
	types := map[wire.Type]int{}
	for _, c := range append(rxLog, txLog...) {
		var p wire.Packet
		if wire.Parse(c.b, &p) == nil {
			types[p.Type]++
		}
	}
	t.Logf("captured %d datagrams at the receiver, %d at the sender: %v", len(rxLog), len(txLog), types)
	for _, typ := range []wire.Type{wire.TypeSPM, wire.TypeODATA, wire.TypeRDATA, wire.TypeNCF, wire.TypeNAK} {
		if types[typ] == 0 {
			t.Fatalf("no %v captured", typ)
		}
	}

	// Receiver seeds: the capture in chunks, with the time between
	// datagrams and a read after every few.
	var rxSeeds [][]byte
	const chunk = 40
	for i := 0; i < len(rxLog); i += chunk {
		var seed []byte
		prev := rxLog[i].at
		for j, c := range rxLog[i:min(i+chunk, len(rxLog))] {
			seed = timeRecords(seed, c.at.Sub(prev))
			prev = c.at
			seed = datagramRecord(seed, c.b)
			if j%4 == 3 {
				seed = append(seed, fzReadAll, 0, 0)
			}
		}
		rxSeeds = append(rxSeeds, seed)
	}
	// Sender seed: sends and NAKs/SPMRs in the order they happened.
	var txSeed []byte
	prev := start
	for i, j := 0, 0; i < len(sends) || j < len(txLog); {
		var c captured
		if j == len(txLog) || i < len(sends) && sends[i].at.Before(txLog[j].at) {
			c, i = sends[i], i+1
		} else {
			c, j = txLog[j], j+1
		}
		txSeed = timeRecords(txSeed, c.at.Sub(prev))
		prev = c.at
		if c.b == nil {
			txSeed = append(txSeed, fzRead, byte(c.send>>8), byte(c.send))
		} else {
			txSeed = datagramRecord(txSeed, c.b)
		}
		txSeed = append(txSeed, fzReadAll, 0, 0)
	}
	t.Logf("%d receiver seeds, a sender seed of %d bytes", len(rxSeeds), len(txSeed))
	if !*capture {
		return
	}
	dir := filepath.Join("..", "session", "testdata", "fuzz")
	for i, seed := range rxSeeds {
		writeSeed(t, filepath.Join(dir, "FuzzReceiverWire", fmt.Sprintf("real-traffic-%02d", i)), seed)
	}
	writeSeed(t, filepath.Join(dir, "FuzzSenderWire", "real-traffic"), txSeed)
}

func timeRecords(b []byte, d time.Duration) []byte {
	for u := d / (100 * time.Microsecond); u > 0; u -= min(u, 0xFFFF) {
		v := min(u, 0xFFFF)
		b = append(b, fzTime, byte(v>>8), byte(v))
	}
	return b
}

func datagramRecord(b, d []byte) []byte {
	b = append(b, fzDatagram, 0, 0)
	binary.BigEndian.PutUint16(b[len(b)-2:], uint16(len(d)))
	return append(b, d...)
}

func writeSeed(t *testing.T, path string, b []byte) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b), 0o644); err != nil {
		t.Fatal(err)
	}
}
