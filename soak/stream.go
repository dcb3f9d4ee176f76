package main

import (
	"fmt"

	"github.com/relmcast/relmcast/internal/cli"
	"github.com/relmcast/relmcast/mcast"
)

// The soak's messages: message n is cli.FillNumbered(n) of msgSize(n)
// bytes, sizes mixed so that a quarter of them are fragmented.

// Packet sizes at MTU 1500 over IPv4: the payload of an unfragmented
// message, and of each fragment but the last.
const (
	maxTSDU = 1500 - 20 - 8 - 16 - 8
	maxFrag = maxTSDU - 20
)

// msgSize is the size of message n: 75% of 8..1400 bytes (one packet),
// 20% of 1449..4400 (2 to 4 fragments), 5% of 4401..20000 (up to 15
// fragments: OpenPGM receivers take 16).
func msgSize(n uint64) int {
	h := mix(n)
	r := int(h >> 40)
	switch p := h % 100; {
	case p < 75:
		return 8 + r%1393
	case p < 95:
		return maxTSDU + 1 + r%(4400-maxTSDU)
	}
	return 4401 + r%15600
}

// mix is splitmix64's finaliser.
func mix(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ x>>30) * 0xBF58476D1CE4E5B9
	x = (x ^ x>>27) * 0x94D049BB133111EB
	return x ^ x>>31
}

// tpdus is the number of packets message n takes.
func tpdus(n uint64) uint64 {
	s := msgSize(n)
	if s <= maxTSDU {
		return 1
	}
	return uint64((s + maxFrag - 1) / maxFrag)
}

// verifier checks one receiver's stream of the soak's messages from one
// source: in order, whole, none twice, and every message that does not
// arrive accounted for exactly by the loss events before the next one
// (their packet counts add up to the packets of the missing messages).
type verifier struct {
	count      uint64 // messages sent
	next       uint64 // next message expected
	lostSince  uint64 // packets reported lost since the last message
	delivered  uint64
	bytes      uint64
	lostMsgs   uint64
	lossEvents uint64
	lostPkts   uint64
	reasons    map[mcast.LossReason]uint64
	sources    int
	gone       mcast.GoneReason
	errs       []string
}

func newVerifier(count uint64) *verifier {
	return &verifier{count: count, reasons: map[mcast.LossReason]uint64{}}
}

func (v *verifier) fail(format string, a ...any) {
	if len(v.errs) < 20 {
		v.errs = append(v.errs, fmt.Sprintf(format, a...))
	}
}

// event checks one event.
func (v *verifier) event(ev *mcast.Event) {
	if v.gone != 0 {
		v.fail("%v after the source was gone", ev)
		return
	}
	switch ev.Kind {
	case mcast.EventSourceNew:
		if v.sources++; v.sources > 1 {
			v.fail("a second source: %v", ev)
		}
	case mcast.EventSourceRestart:
		v.fail("the source restarted: %v", ev)
	case mcast.EventSourceGone:
		v.gone = ev.GoneReason
		v.account(v.count, "the end")
	case mcast.EventLoss:
		v.lossEvents++
		v.lostPkts += ev.Lost
		v.lostSince += ev.Lost
		v.reasons[ev.LossReason]++
	case mcast.EventData:
		n, ok := cli.CheckNumbered(ev.Data)
		switch {
		case !ok:
			v.fail("message #%d (seq %d): wrong content", n, ev.Seq)
			return
		case len(ev.Data) != msgSize(n):
			v.fail("message #%d: %d bytes, want %d", n, len(ev.Data), msgSize(n))
			return
		case n < v.next:
			v.fail("message #%d after #%d: duplicate or out of order", n, v.next-1)
			return
		case n >= v.count:
			v.fail("message #%d: only %d were sent", n, v.count)
			return
		}
		v.account(n, fmt.Sprintf("message #%d", n))
		v.next = n + 1
		v.delivered++
		v.bytes += uint64(len(ev.Data))
	}
}

// account checks that the loss events since the last message account
// exactly for the messages missing before message n.
func (v *verifier) account(n uint64, at string) {
	var want uint64
	for m := v.next; m < n; m++ {
		want += tpdus(m)
	}
	if want != v.lostSince {
		v.fail("before %s: messages #%d..#%d (%d packets) missing, loss events reported %d packets",
			at, v.next, n-1, want, v.lostSince)
	}
	v.lostMsgs += n - v.next
	v.next, v.lostSince = n, 0
}

// complete reports whether every message was accounted for.
func (v *verifier) complete() bool {
	return v.gone != 0 && v.delivered+v.lostMsgs == v.count && len(v.errs) == 0
}
