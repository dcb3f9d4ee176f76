package mcasttest

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// With Latency 10ms a datagram is readable exactly 10ms of fake time after
// WriteBatch, not a nanosecond earlier.
func TestLatencySynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := NewNetwork(NetworkConfig{Latency: 10 * time.Millisecond})
		defer n.Close()
		a, b := n.Endpoint(h1, 1), n.Endpoint(h2, 1)
		b.Join(group)

		type arrival struct {
			at   time.Time
			data string
		}
		got := make(chan arrival, 10)
		go func() {
			ds := []Datagram{{Buf: make([]byte, 100)}}
			for {
				n, err := b.ReadBatch(ds)
				if err != nil {
					close(got)
					return
				}
				for _, d := range ds[:n] {
					got <- arrival{time.Now(), string(d.Buf[:d.N])}
				}
			}
		}()

		start := time.Now()
		send(t, a, group, "first")
		time.Sleep(3 * time.Millisecond)
		send(t, a, group, "second") // due at +13ms

		time.Sleep(10*time.Millisecond - 3*time.Millisecond - time.Nanosecond)
		synctest.Wait()
		if len(got) != 0 {
			t.Fatalf("datagram delivered before +10ms")
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if len(got) != 1 {
			t.Fatalf("%d datagrams delivered at +10ms, want 1", len(got))
		}
		if a := <-got; a.data != "first" || a.at.Sub(start) != 10*time.Millisecond {
			t.Errorf("got %q at +%v, want \"first\" at +10ms", a.data, a.at.Sub(start))
		}
		if a := <-got; a.data != "second" || a.at.Sub(start) != 13*time.Millisecond {
			t.Errorf("got %q at +%v, want \"second\" at +13ms", a.data, a.at.Sub(start))
		}
		if st := b.Stats(); st.Received != 2 {
			t.Errorf("stats %+v", st)
		}
	})
}

// Jitter spreads delivery over [Latency, Latency+Jitter), reproducibly.
func TestJitterSynctest(t *testing.T) {
	const lat, jit, count = 5 * time.Millisecond, 5 * time.Millisecond, 200
	run := func() (delays []time.Duration, inversions int) {
		synctest.Test(t, func(t *testing.T) {
			n := NewNetwork(NetworkConfig{Latency: lat, Jitter: jit, Seed: 9})
			defer n.Close()
			a, b := n.Endpoint(h1, 1), n.Endpoint(h2, 1)
			b.Join(group)
			start := time.Now()
			go func() {
				for i := range count {
					sendSeq(t, a, group, i, i+1)
					time.Sleep(100 * time.Microsecond)
				}
			}()
			ds := []Datagram{{Buf: make([]byte, 4)}}
			last := -1
			for range count {
				if _, err := b.ReadBatch(ds); err != nil {
					t.Fatal(err)
				}
				s := int(binary.BigEndian.Uint32(ds[0].Buf))
				delays = append(delays, time.Since(start)-time.Duration(s)*100*time.Microsecond)
				if s < last {
					inversions++
				}
				last = s
			}
		})
		return delays, inversions
	}
	delays, inversions := run()
	for _, d := range delays {
		if d < lat || d >= lat+jit {
			t.Errorf("delay %v outside [%v, %v)", d, lat, lat+jit)
		}
	}
	if inversions == 0 {
		t.Error("jitter of 5ms with 0.1ms spacing reordered nothing")
	}
	again, _ := run()
	if len(again) != len(delays) {
		t.Fatal("second run delivered a different number")
	}
	for i := range delays {
		if again[i] != delays[i] {
			t.Fatalf("delay %d differs between runs: %v vs %v", i, delays[i], again[i])
		}
	}
}

// Closing with datagrams in flight discards them; the bubble ends cleanly
// (no timer or goroutine left behind).
func TestCloseInFlightSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := NewNetwork(NetworkConfig{Latency: time.Second})
		a, b := n.Endpoint(h1, 1), n.Endpoint(h2, 1)
		b.Join(group)
		send(t, a, group, "in flight")
		errc := make(chan error)
		go func() {
			_, err := b.ReadBatch(make([]Datagram, 1))
			errc <- err
		}()
		time.Sleep(500 * time.Millisecond)
		n.Close()
		if err := <-errc; !errors.Is(err, net.ErrClosed) {
			t.Errorf("ReadBatch: %v", err)
		}
		time.Sleep(time.Second) // the stopped timer must not deliver
		if st := b.Stats(); st.Received != 0 {
			t.Errorf("stats %+v", st)
		}
	})
}

// The receive queue limit applies when datagrams arrive, after the latency.
func TestLatencyQueueOverflowSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := NewNetwork(NetworkConfig{Latency: time.Millisecond, QueueLen: 2})
		defer n.Close()
		a, b := n.Endpoint(h1, 1), n.Endpoint(h2, 1)
		b.Join(group)
		sendSeq(t, a, group, 0, 5)
		if st := b.Stats(); st.DroppedQueue != 0 {
			t.Errorf("dropped before arrival: %+v", st)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if st := b.Stats(); st.DroppedQueue != 3 {
			t.Errorf("stats %+v, want 3 queue drops", st)
		}
	})
}

// Several writers and readers at once, with latency, jitter and impairment,
// under the race detector; every datagram is accounted for.
func TestConcurrentSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const perWriter = 500
		n := NewNetwork(NetworkConfig{Latency: time.Millisecond, Jitter: time.Millisecond, Seed: 4})
		hosts := []netip.Addr{h1, h2, h3, h4}
		var eps []*Endpoint
		for _, h := range hosts {
			e := n.Endpoint(h, 7500)
			e.Join(group)
			e.SetImpairment(Impairment{Loss: 0.1, Duplicate: 0.1, Seed: 1})
			eps = append(eps, e)
		}
		var writers, readers sync.WaitGroup
		for _, e := range eps {
			writers.Go(func() {
				for i := range perWriter {
					sendSeq(t, e, group, i, i+1)
					if i%50 == 0 {
						e.SetDrop(func(Datagram) bool { return false }) // churn the rule
						time.Sleep(100 * time.Microsecond)
					}
				}
			})
			readers.Go(func() {
				ds := make([]Datagram, 8)
				for i := range ds {
					ds[i].Buf = make([]byte, 8)
				}
				for {
					if _, err := e.ReadBatch(ds); err != nil {
						return
					}
					_ = e.Stats()
				}
			})
		}
		writers.Wait()
		time.Sleep(time.Second) // let everything in flight land
		synctest.Wait()         // and be read
		n.Close()
		readers.Wait()
		for _, e := range eps {
			st := e.Stats()
			arrived := uint64(len(eps) * perWriter)
			if st.Received != arrived-st.DroppedImpairment+st.Duplicated || st.Sent != perWriter {
				t.Errorf("%v: stats %+v, %d arrived", e.LocalAddr(), st, arrived)
			}
		}
	})
}
