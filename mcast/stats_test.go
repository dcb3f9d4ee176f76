package mcast_test

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/relmcast/relmcast/internal/wire"
	"github.com/relmcast/relmcast/mcast"
	"github.com/relmcast/relmcast/mcast/mcasttest"
)

// dropODATA returns a drop rule that drops the first copy of the ODATA
// packets whose sequence numbers are in seqs (repairs come as RDATA and
// pass).
func dropODATA(seqs ...uint32) func(mcasttest.Datagram) bool {
	var mu sync.Mutex
	todo := map[uint32]bool{}
	for _, q := range seqs {
		todo[q] = true
	}
	return func(d mcasttest.Datagram) bool {
		var p wire.Packet
		if wire.Parse(d.Buf[:d.N], &p) != nil || p.Type != wire.TypeODATA {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		if todo[p.Seq] {
			delete(todo, p.Seq)
			return true
		}
		return false
	}
}

// TestSourceStats: N one-packet messages, k of them dropped once on the
// way to the receiver: the per-source stats count N messages, k holes
// NAKed and repaired, k repair latency samples within the NAK back-off,
// and no loss; the sender counts the k NAKed numbers, the NCFs and the k
// repairs. The logger sees the source and the NAKs.
func TestSourceStats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 400
		dropped := []uint32{10, 50, 51, 52, 200, 399}
		k := uint64(len(dropped))
		nw := mcasttest.NewNetwork(mcasttest.NetworkConfig{})
		defer nw.Close()
		ep := nw.Endpoint(netip.MustParseAddr("10.0.1.1"), 0)
		ep.Join(group)
		ep.SetDrop(dropODATA(dropped...))
		var logs syncBuffer
		r, err := mcast.Listen(group, &mcast.Config{
			Transport: ep, Seed: 1,
			Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		s, err := mcast.NewSender(group, &mcast.Config{
			Transport: nw.Endpoint(netip.MustParseAddr("10.0.0.1"), group.Port()),
			Rate:      -1, Linger: time.Minute, WindowPackets: 16384,
		})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		for i := range n {
			if err := s.Send(context.Background(), makeMsg(0, i)); err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var ev mcast.Event
		for got := 0; got < n; {
			if err := r.Read(ctx, &ev); err != nil {
				t.Fatal(err)
			}
			switch ev.Kind {
			case mcast.EventData:
				if _, i, err := checkMsg(ev.Data); err != nil || i != got {
					t.Fatalf("message %d: index %d, %v", got, i, err)
				}
				got++
			case mcast.EventSourceNew:
			default:
				t.Fatalf("unexpected event %v", &ev)
			}
		}
		synctest.Wait() // the NCFs and last repairs are in
		srcs := r.Sources()
		if len(srcs) != 1 {
			t.Fatalf("%d sources, want 1", len(srcs))
		}
		st := srcs[0]
		if st.Source != s.Source() || st.Addr != s.Addr() || st.State != mcast.SourceActive {
			t.Errorf("source %v at %v (%v); want %v at %v, active", st.Source, st.Addr, st.State, s.Source(), s.Addr())
		}
		if !st.FirstSeen.Equal(start) || st.LastSeen.Before(st.FirstSeen) {
			t.Errorf("first seen %v, last seen %v; start %v", st.FirstSeen, st.LastSeen, start)
		}
		want := map[string][2]uint64{
			"Messages":             {st.Messages, n},
			"LossEvents":           {st.LossEvents, 0},
			"Lost":                 {st.Lost, 0},
			"NAKs":                 {st.NAKs, k},
			"Repairs":              {st.Repairs, k},
			"RepairLatency.Count":  {st.RepairLatency.Count, k},
			"NCFs":                 {st.NCFs, st.NAKPackets},
			"Duplicates":           {st.Duplicates, 0},
			"FECRecovered":         {st.FECRecovered, 0},
			"NAKsSuppressed":       {st.NAKsSuppressed, 0},
			"WindowPackets":        {uint64(st.WindowPackets), 0},
			"WindowMaxPackets":     {uint64(st.WindowMaxPackets), 32768},
			"Lead-Head+1 (window)": {uint64(st.Lead - st.Head + 1), 0},
		}
		for name, v := range want {
			if v[0] != v[1] {
				t.Errorf("%s = %d; want %d", name, v[0], v[1])
			}
		}
		var bytes uint64
		for i := range n {
			bytes += uint64(msgSize(i))
		}
		if st.Bytes != bytes {
			t.Errorf("Bytes = %d; want %d", st.Bytes, bytes)
		}
		// 50..52 are found missing together and NAKed in one packet; the
		// others one each: 4 NAK packets.
		if st.NAKPackets != 4 {
			t.Errorf("NAKPackets = %d; want 4", st.NAKPackets)
		}
		// No network latency: a repair takes the NAK back-off (at most
		// 10 ms) and nothing more.
		h := st.RepairLatency
		if p50, p99 := h.Quantile(0.5), h.Quantile(0.99); p50 <= 0 || p99 < p50 || p99 > h.Max || h.Max > 10*time.Millisecond {
			t.Errorf("repair latency p50 %v p99 %v max %v; want 0 < p50 <= p99 <= max <= 10ms", p50, p99, h.Max)
		}
		var inBuckets uint64
		for _, c := range h.Counts {
			inBuckets += c
		}
		if inBuckets != k || h.Sum <= 0 {
			t.Errorf("histogram buckets hold %d samples, sum %v; want %d", inBuckets, h.Sum, k)
		}

		ss := s.Stats()
		if ss.NAKSeqs != k || ss.RDATA != k || ss.NCF != st.NAKPackets || ss.NAKs != st.NAKPackets {
			t.Errorf("sender: NAKSeqs %d, RDATA %d, NCF %d, NAKs %d; want %d, %d, %d, %d",
				ss.NAKSeqs, ss.RDATA, ss.NCF, ss.NAKs, k, k, st.NAKPackets, st.NAKPackets)
		}
		if ss.NAKsOutsideWindow != 0 || ss.LateNAKers[0].NAKs != 0 {
			t.Errorf("sender: %d NAKs outside the window, late NAKers %v", ss.NAKsOutsideWindow, ss.LateNAKers)
		}
		// Every 50th message takes 4 packets.
		if tpdus := n + 3*n/50; st.Head != uint32(tpdus) || ss.WindowPackets != tpdus || ss.WindowMaxPackets != 16384 ||
			ss.Lead-ss.Trail+1 != uint32(tpdus) || ss.Uptime <= 0 {
			t.Errorf("sender window %d of %d, trail %d lead %d, uptime %v", ss.WindowPackets, ss.WindowMaxPackets, ss.Trail, ss.Lead, ss.Uptime)
		}
		time.Sleep(time.Second)
		later := s.Stats()
		if m, b := later.Rate(ss); m != 0 || b != 0 {
			t.Errorf("rate while idle: %v msgs/s, %v B/s", m, b)
		}
		if m, _ := ss.Rate(mcast.SenderStats{}); m <= 0 {
			t.Errorf("mean rate %v msgs/s", m)
		}

		log := logs.String()
		for what, want := range map[string]int{`"msg":"mcast: source new"`: 1, `"msg":"mcast: NAK sent"`: 4, `"msg":"mcast: loss"`: 0} {
			if got := strings.Count(log, what); got != want {
				t.Errorf("log has %d %s; want %d:\n%s", got, what, want, log)
			}
		}
		s.Close()
		for ev.Kind != mcast.EventSourceGone {
			if err := r.Read(ctx, &ev); err != nil {
				t.Fatal(err)
			}
		}
		if srcs := r.Sources(); len(srcs) != 0 {
			t.Errorf("%d sources after gone", len(srcs))
		}
		if !strings.Contains(logs.String(), `"msg":"mcast: source gone"`) {
			t.Errorf("no source gone in the log")
		}
	})
}

// TestSourceStatsLoss: packets dropped for good (every copy) become loss
// events; the per-source counters match the stream.
func TestSourceStatsLoss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := mcasttest.NewNetwork(mcasttest.NetworkConfig{})
		defer nw.Close()
		ep := nw.Endpoint(netip.MustParseAddr("10.0.1.1"), 0)
		ep.Join(group)
		ep.SetDrop(func(d mcasttest.Datagram) bool {
			var p wire.Packet
			return wire.Parse(d.Buf[:d.N], &p) == nil && (p.Type == wire.TypeODATA || p.Type == wire.TypeRDATA) && p.Seq == 7
		})
		var logs syncBuffer
		r, err := mcast.Listen(group, &mcast.Config{Transport: ep, Seed: 1, NAKRetries: 2,
			Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		s, err := mcast.NewSender(group, &mcast.Config{
			Transport: nw.Endpoint(netip.MustParseAddr("10.0.0.1"), group.Port()), Rate: -1, Linger: time.Minute,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		for i := range 20 {
			s.Send(context.Background(), makeMsg(0, i))
		}
		var ev mcast.Event
		msgs, lost := 0, uint64(0)
		for msgs < 19 {
			if err := r.Read(context.Background(), &ev); err != nil {
				t.Fatal(err)
			}
			switch ev.Kind {
			case mcast.EventData:
				msgs++
			case mcast.EventLoss:
				lost += ev.Lost
			}
		}
		st := r.Sources()[0]
		if st.Messages != 19 || st.LossEvents != 1 || st.Lost != 1 || lost != 1 || st.Repairs != 0 || st.RepairLatency.Count != 0 {
			t.Errorf("messages %d, loss events %d, lost %d (stream %d), repairs %d, latency samples %d; want 19, 1, 1, 1, 0, 0",
				st.Messages, st.LossEvents, st.Lost, lost, st.Repairs, st.RepairLatency.Count)
		}
		if !strings.Contains(logs.String(), "level=WARN msg=\"mcast: loss\"") || !strings.Contains(logs.String(), "reason=retries-exhausted") {
			t.Errorf("log:\n%s", logs.String())
		}
	})
}

// TestSourceStatsSeededLoss: seeded random loss of ODATA, RDATA and NCFs
// on the way to the receiver. Every message arrives, and the per-source
// counters match what was injected: one repair and one latency sample
// per ODATA dropped, at least one NAK for each, and an NCF counted for
// each NCF that got through.
func TestSourceStatsSeededLoss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 3000
		nw := mcasttest.NewNetwork(mcasttest.NetworkConfig{})
		defer nw.Close()
		ep := nw.Endpoint(netip.MustParseAddr("10.0.1.1"), 0)
		ep.Join(group)
		var (
			mu         sync.Mutex
			rng        = rand.New(rand.NewPCG(7, 7))
			odataDrops = map[uint32]bool{}
			ncfsPassed uint64
			rdataDrops uint64
		)
		ep.SetDrop(func(d mcasttest.Datagram) bool {
			var p wire.Packet
			if wire.Parse(d.Buf[:d.N], &p) != nil {
				return false
			}
			mu.Lock()
			defer mu.Unlock()
			drop := rng.Float64() < 0.05
			switch p.Type {
			case wire.TypeODATA:
				if drop {
					odataDrops[p.Seq] = true
				}
			case wire.TypeRDATA:
				if drop {
					rdataDrops++
				}
			case wire.TypeNCF:
				if !drop {
					ncfsPassed++
				}
			default:
				return false
			}
			return drop
		})
		r, err := mcast.Listen(group, &mcast.Config{Transport: ep, Seed: 3})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		s, err := mcast.NewSender(group, &mcast.Config{
			Transport: nw.Endpoint(netip.MustParseAddr("10.0.0.1"), group.Port()), Rate: -1, Linger: time.Minute,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		go func() {
			for i := range n {
				s.Send(context.Background(), makeMsg(0, i%49)) // one packet each
			}
		}()
		var ev mcast.Event
		for got := 0; got < n; {
			if err := r.Read(context.Background(), &ev); err != nil {
				t.Fatal(err)
			}
			switch ev.Kind {
			case mcast.EventData:
				got++
			case mcast.EventSourceNew:
			default:
				t.Fatalf("event %v", &ev)
			}
		}
		synctest.Wait()
		st := r.Sources()[0]
		mu.Lock()
		k := uint64(len(odataDrops))
		ncfs, rdrops := ncfsPassed, rdataDrops
		mu.Unlock()
		t.Logf("%d ODATA dropped, %d RDATA dropped, %d NCFs passed; stats: %d NAKs in %d packets, %d NCFs, %d repairs, %d dups, latency p50 %v p99 %v",
			k, rdrops, ncfs, st.NAKs, st.NAKPackets, st.NCFs, st.Repairs, st.Duplicates, st.RepairLatency.Quantile(0.5), st.RepairLatency.Quantile(0.99))
		if k < 50 {
			t.Fatalf("only %d ODATA dropped", k)
		}
		if st.Messages != n || st.LossEvents != 0 || st.Repairs != k || st.RepairLatency.Count != k || st.NAKs < k || st.NCFs != ncfs {
			t.Errorf("messages %d, loss events %d, repairs %d, latency samples %d, NAKs %d, NCFs %d; want %d, 0, %d, %d, >= %d, %d",
				st.Messages, st.LossEvents, st.Repairs, st.RepairLatency.Count, st.NAKs, st.NCFs, n, k, k, k, ncfs)
		}
		if ss := s.Stats(); ss.RDATA < k+rdrops-st.Duplicates || ss.NAKSeqs != st.NAKs {
			t.Errorf("sender RDATA %d, NAKed numbers %d; receiver repairs %d (+%d RDATA dropped), NAKs %d", ss.RDATA, ss.NAKSeqs, st.Repairs, rdrops, st.NAKs)
		}
	})
}
