package main

import (
	"strings"
	"testing"

	"github.com/relmcast/relmcast/internal/cli"
	"github.com/relmcast/relmcast/mcast"
)

func TestMsgSize(t *testing.T) {
	var frag, big, bytes int
	const n = 100000
	for i := range uint64(n) {
		s := msgSize(i)
		if s < cli.NumberedHeader || s > 20000 {
			t.Fatalf("message %d: %d bytes", i, s)
		}
		if s > maxTSDU {
			frag++
		}
		if tpdus(i) > 16 {
			t.Fatalf("message %d: %d fragments, OpenPGM takes 16", i, tpdus(i))
		}
		if s > 4400 {
			big++
		}
		bytes += s
	}
	t.Logf("%d%% fragmented, %d%% over 4400 bytes, %d bytes on average", frag*100/n, big*100/n, bytes/n)
	if frag < n/5 || big < n/30 {
		t.Fatalf("%d fragmented, %d big", frag, big)
	}
}

// TestVerifier: the soak's receiver check accepts loss only when the loss
// events account exactly for the missing messages' packets.
func TestVerifier(t *testing.T) {
	msg := func(n uint64) *mcast.Event {
		b := make([]byte, msgSize(n))
		cli.FillNumbered(b, n)
		return &mcast.Event{Kind: mcast.EventData, Data: b}
	}
	loss := func(pkts uint64) *mcast.Event {
		return &mcast.Event{Kind: mcast.EventLoss, Lost: pkts, LossReason: mcast.LossWindowPassed}
	}
	gone := &mcast.Event{Kind: mcast.EventSourceGone, GoneReason: mcast.GoneFIN}
	news := &mcast.Event{Kind: mcast.EventSourceNew}
	for _, tc := range []struct {
		name   string
		events []*mcast.Event
		ok     bool
		err    string
	}{
		{"all", []*mcast.Event{news, msg(0), msg(1), msg(2), gone}, true, ""},
		{"exact loss", []*mcast.Event{news, msg(0), loss(tpdus(1)), msg(2), gone}, true, ""},
		{"loss at the end", []*mcast.Event{news, msg(0), msg(1), loss(tpdus(2)), gone}, true, ""},
		{"silent gap", []*mcast.Event{news, msg(0), msg(2), gone}, false, "missing, loss events reported 0 packets"},
		{"loss too big", []*mcast.Event{news, msg(0), loss(tpdus(1) + 1), msg(2), gone}, false, "missing"},
		{"loss without a gap", []*mcast.Event{news, msg(0), loss(1), msg(1), msg(2), gone}, false, "missing"},
		{"duplicate", []*mcast.Event{news, msg(0), msg(0), msg(1), msg(2), gone}, false, "duplicate"},
		{"silent end", []*mcast.Event{news, msg(0), msg(1), gone}, false, "before the end"},
		{"no end", []*mcast.Event{news, msg(0), msg(1), msg(2)}, false, ""},
		{"restart", []*mcast.Event{news, msg(0), {Kind: mcast.EventSourceRestart}, msg(1), msg(2), gone}, false, "restarted"},
	} {
		v := newVerifier(3)
		for _, e := range tc.events {
			v.event(e)
		}
		if v.complete() != tc.ok || tc.err != "" && !strings.Contains(strings.Join(v.errs, "; "), tc.err) {
			t.Errorf("%s: complete %v, errors %q", tc.name, v.complete(), v.errs)
		}
	}
}
