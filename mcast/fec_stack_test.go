package mcast_test

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/relmcast/relmcast/internal/wire"
	"github.com/relmcast/relmcast/mcast"
	"github.com/relmcast/relmcast/mcast/mcasttest"
)

// cappedLoss drops data packets (ODATA and RDATA, parity included) at
// random, with probability p, each drop starting a run of burst packets,
// but never more than limit packets of one transmission group of k, so
// that limit parity packets per group repair every loss. The packets of
// group lose (if not 0), sqns lose..lose+limit, are dropped on purpose
// instead: one more than parity can repair.
func cappedLoss(k uint32, limit int, p float64, burst int, seed uint64, lose uint32) func(mcasttest.Datagram) bool {
	type key struct {
		src uint16
		tg  uint32
	}
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(seed, 7))
	count := map[key]int{}
	run := 0
	return func(d mcasttest.Datagram) bool {
		var pk wire.Packet
		if wire.Parse(d.Buf[:d.N], &pk) != nil || pk.Type != wire.TypeODATA && pk.Type != wire.TypeRDATA {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		tg := pk.Seq &^ (k - 1)
		if lose != 0 && tg == lose {
			return pk.Type == wire.TypeODATA && pk.Seq <= lose+uint32(limit)
		}
		drop := run > 0
		if drop {
			run--
		} else if rng.Float64() < p {
			drop, run = true, burst-1
		}
		if k := (key{pk.SPort, tg}); drop && count[k] < limit {
			count[k]++
			return true
		}
		return false
	}
}

var fecStackNet = mcasttest.NetworkConfig{Latency: time.Millisecond, QueueLen: 100000}

// TestStackFECProactive: with pro-active parity and loss that it covers
// (at most h per group), every receiver gets everything without sending a
// single NAK, at 1%, 5% and 20% loss and in bursts.
func TestStackFECProactive(t *testing.T) {
	const k, h = 16, 4
	cfg := mcast.Config{Rate: 50_000_000, NAKRetries: 50, FECGroupSize: k, FECProactive: h}
	for _, tc := range []struct {
		name  string
		p     float64
		burst int
	}{{"1%", 0.01, 1}, {"5%", 0.05, 1}, {"20%", 0.20, 1}, {"burst", 0.01, h}} {
		t.Run(tc.name, func(t *testing.T) {
			var out stackResult
			runStack(t, stackConfig{sources: 2, receivers: 3, messages: 1500, net: fecStackNet, cfg: cfg,
				wantComplete: true, out: &out,
				drop: func(i int) func(mcasttest.Datagram) bool {
					return cappedLoss(k, h, tc.p, tc.burst, uint64(i+1), 0)
				}})
			for i, st := range out.receivers {
				if st.NAKPackets != 0 || st.FECRecovered == 0 || st.Repairs != 0 {
					t.Errorf("receiver %d: %d NAK packets, %d rebuilt by FEC, %d repairs; want 0, some, 0",
						i, st.NAKPackets, st.FECRecovered, st.Repairs)
				}
			}
		})
	}
}

// TestStackFECLoss: FEC with both kinds of parity under random loss it
// does not always cover: everything arrives, with fewer NAKs than
// selective repair alone (logged for comparison).
func TestStackFECLoss(t *testing.T) {
	for _, tc := range []struct {
		name   string
		impair mcasttest.Impairment
	}{
		{"1%", mcasttest.Impairment{Loss: 0.01}},
		{"5%", mcasttest.Impairment{Loss: 0.05}},
		{"20%", mcasttest.Impairment{Loss: 0.20}},
		{"burst", mcasttest.Impairment{BurstLoss: 0.01, BurstLen: 20}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var naks [2]uint64
			for j, fecOn := range []bool{false, true} {
				cfg := mcast.Config{Rate: 50_000_000, NAKRetries: 50}
				if fecOn {
					cfg.FECGroupSize, cfg.FECProactive, cfg.FECOnDemand = 16, 2, true
				}
				var out stackResult
				runStack(t, stackConfig{sources: 1, receivers: 3, messages: 1500, impair: tc.impair,
					net: fecStackNet, cfg: cfg, wantComplete: true, out: &out})
				for _, st := range out.receivers {
					naks[j] += st.NAKPackets
				}
			}
			t.Logf("%s loss: %d NAK packets without FEC, %d with FEC 16:2 + on demand (3 receivers)", tc.name, naks[0], naks[1])
		})
	}
}

// TestStackFECOnDemandEfficiency: 10 receivers at 5% independent loss get
// everything, and on-demand parity costs the source at most 1.15 packets
// per original; selective repair needs about 1.4 there.
func TestStackFECOnDemandEfficiency(t *testing.T) {
	ratio := func(cfg mcast.Config) float64 {
		var out stackResult
		runStack(t, stackConfig{sources: 1, receivers: 10, messages: 3000,
			impair: mcasttest.Impairment{Loss: 0.05}, net: fecStackNet, cfg: cfg, wantComplete: true, out: &out})
		st := out.senders[0]
		return float64(st.ODATA+st.RDATA) / float64(st.ODATA-st.Padding)
	}
	base := mcast.Config{Rate: 50_000_000, NAKRetries: 50}
	selective := ratio(base)
	fecCfg := base
	fecCfg.FECGroupSize, fecCfg.FECOnDemand = 32, true
	onDemand := ratio(fecCfg)
	t.Logf("packets sent per original: %.3f selective, %.3f with on-demand parity (k=32)", selective, onDemand)
	if onDemand > 1.15 {
		t.Errorf("on-demand parity: %.3f packets per original, want at most 1.15", onDemand)
	}
}

// TestStackFECPassive: receivers that never NAK get everything that
// pro-active parity covers, and a loss event for a group it cannot repair.
func TestStackFECPassive(t *testing.T) {
	const k, h = 16, 2
	var out stackResult
	runStack(t, stackConfig{sources: 1, receivers: 3, messages: 1500, net: fecStackNet, out: &out,
		cfg: mcast.Config{Rate: 50_000_000, NAKRetries: 5, Passive: true, FECGroupSize: k, FECProactive: h},
		drop: func(i int) func(mcasttest.Datagram) bool {
			return cappedLoss(k, h, 0.05, 1, uint64(i+1), 10*k) // sqns 160..162 lost for good
		}})
	for i, c := range out.streams {
		if c.losses != 1 || c.lost < h+1 || c.got < 1500-(h+1) {
			t.Errorf("stream %d: %d messages, %d loss events (%d packets); want all but those in 160..162, one loss",
				i, c.got, c.losses, c.lost)
		}
	}
	for i, st := range out.receivers {
		if st.NAKPackets != 0 || st.FECRecovered == 0 {
			t.Errorf("receiver %d: %d NAK packets, %d rebuilt", i, st.NAKPackets, st.FECRecovered)
		}
	}
}
