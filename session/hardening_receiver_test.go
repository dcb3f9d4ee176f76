package session

import (
	"fmt"
	"testing"
	"time"

	"github.com/relmcast/relmcast/internal/wire"
)

// TestReceiverRestartSameTSI: a sender restarted with the same TSI (same
// GSI and port) numbers its SPMs and data from the start again. Two SPMs
// saying so make it a restart: the old session's hole is reported, its
// last message delivered, and the new session's messages come as a new
// stream, never mixed into the old one.
func TestReceiverRestartSameTSI(t *testing.T) {
	x := newRxTest(t, ReceiverConfig{})
	for i := range uint32(3) {
		x.spm(i, 0, 0xFFFFFFFF, false) // OpenPGM's empty window: trail 0, lead -1
	}
	for i := range uint32(10) {
		if i != 7 {
			x.odata(i, 0, fmt.Sprint("old", i))
		}
	}
	x.spm(3, 0, 9, false)
	x.wantEvents("source-new", `data 0-0 "old0"`, `data 1-1 "old1"`, `data 2-2 "old2"`, `data 3-3 "old3"`,
		`data 4-4 "old4"`, `data 5-5 "old5"`, `data 6-6 "old6"`)
	t.Log("# the sender restarts: 3 SPMs and data, numbered from 0 again")
	x.spm(0, 0, 0xFFFFFFFF, false)
	x.wantEvents()
	x.spm(1, 0, 0xFFFFFFFF, false)
	x.spm(2, 0, 0xFFFFFFFF, false)
	x.odata(0, 0, "new0")
	x.odata(1, 0, "new1")
	x.wantEvents("loss 7-7 n=1 source-restart", `data 8-8 "old8"`, `data 9-9 "old9"`,
		fmt.Sprintf("restart from %v", testTSI), `data 0-0 "new0"`, `data 1-1 "new1"`)
	if s := x.r.Stats(); s.Sources != 1 || len(x.r.byTSI) != 1 || len(x.r.tombs) != 0 {
		t.Fatalf("stats %+v, %d in map, %d tombstones", s, len(x.r.byTSI), len(x.r.tombs))
	}
	t.Log("# the new session carries on, and ends, as any other")
	x.odata(2, 0, "new2")
	x.spm(3, 0, 2, true)
	x.wantEvents(`data 2-2 "new2"`, "gone fin")

	t.Log("# restarted with a new first sequence number, ahead of the old lead")
	y := newRxTest(t, ReceiverConfig{})
	y.spm(5, 0, 0xFFFFFFFF, false)
	y.odata(0, 0, "old")
	y.spm(0, 1000, 999, false)
	y.spm(1, 1000, 999, false)
	y.odata(1000, 1000, "new")
	y.wantEvents("source-new", `data 0-0 "old"`, fmt.Sprintf("restart from %v", testTSI), `data 1000-1000 "new"`)

	t.Log("# restarted before sending any data: nothing to tell apart, nothing mixed")
	z := newRxTest(t, ReceiverConfig{})
	z.spm(0, 0, 0xFFFFFFFF, false)
	z.spm(1, 0, 0xFFFFFFFF, false)
	z.spm(0, 0, 0xFFFFFFFF, false)
	z.spm(1, 0, 0xFFFFFFFF, false)
	z.odata(0, 0, "new")
	z.wantEvents("source-new", `data 0-0 "new"`)
}

// TestReceiverRestartStragglers: old SPMs delayed or duplicated by the
// network are not a restart: one alone is not enough, the same one twice
// is not two, and a current SPM in between clears it.
func TestReceiverRestartStragglers(t *testing.T) {
	x := newRxTest(t, ReceiverConfig{})
	for i := range uint32(3) {
		x.spm(i, 0, 0xFFFFFFFF, false)
	}
	x.odata(0, 0, "a")
	x.odata(1, 0, "b")
	x.spm(3, 0, 1, false)
	x.spm(4, 0, 1, false)
	x.wantEvents("source-new", `data 0-0 "a"`, `data 1-1 "b"`)
	x.spm(1, 0, 0xFFFFFFFF, false) // a start SPM, late
	x.odata(2, 0, "c")
	x.spm(5, 0, 2, false)
	x.spm(2, 0, 0xFFFFFFFF, false) // another, after a current one
	x.spm(2, 0, 0xFFFFFFFF, false) // and its duplicate
	x.odata(3, 0, "d")
	x.wantEvents(`data 2-2 "c"`, `data 3-3 "d"`)
	if n := x.r.Stats().Sources; n != 1 {
		t.Fatalf("%d sources", n)
	}
}

// TestReceiverSlowApplication: an application that stops reading. The
// window holds what it can (Window packets, WindowBytes bytes), the
// oldest beyond that become an overrun loss, in place, never silently;
// NAK state and memory stay bounded; when the application reads again the
// stream resumes where the window is.
func TestReceiverSlowApplication(t *testing.T) {
	const window = 1024
	r := NewReceiver(ReceiverConfig{DPort: testPort, Group: testGroup, Window: window, WindowBytes: 512 << 10})
	now := time.Unix(1, 0)
	var events []string
	read := func(n int) {
		r.Deliver(func(e *Event) bool {
			if n == 0 {
				return false
			}
			n--
			if e.Kind != EventData {
				events = append(events, formatEvent(e))
			}
			return true
		})
	}
	payload := make([]byte, 1000)
	for seq := range uint32(20000) {
		p := wire.Packet{Type: wire.TypeODATA, SPort: testTSI.Port, DPort: testPort, GSI: testTSI.GSI,
			Seq: seq, Trail: seq, Payload: payload}
		r.HandlePacket(now, &p, testSrc)
		if seq < 100 {
			read(1 << 30)
		}
		checkBounds(t, r)
		now = now.Add(10 * time.Microsecond)
	}
	s := r.sources[0]
	t.Logf("application stopped after 100 of 20000 messages of 1000 bytes: window %d numbers, %d bytes of buffers, %d bytes in all",
		s.lead-s.head+1, s.mem, sourceMem(s))
	read(1 << 30)
	if len(events) != 2 || events[0] != "source-new" || events[1][:10] != "loss 100-1" {
		t.Fatalf("events %q", events)
	}
	st := r.Stats()
	if st.Messages+st.Lost != 20000 || st.LossEvents != 1 {
		t.Fatalf("stats %+v", st)
	}
	t.Logf("delivered %d, lost %d in %d event: %s", st.Messages, st.Lost, st.LossEvents, events[1])
}

// TestReceiverIncompleteMessageAtClose: a source that goes (expired,
// restarted, evicted) in the middle of a fragmented message, its last
// fragments never seen, used to stay for ever, never reported gone. Found
// by FuzzReceiverWire on captured traffic.
func TestReceiverIncompleteMessageAtClose(t *testing.T) {
	x := newRxTest(t, ReceiverConfig{SourceExpiry: time.Second})
	x.spm(0, 0, 0, false)
	x.odata(1, 0, "a")
	x.packet(wire.Packet{Type: wire.TypeODATA, Seq: 2, Payload: []byte("abc"), HasFragment: true,
		Fragment: wire.Fragment{First: 2, Offset: 0, Length: 9}})
	x.wantEvents("source-new", `data 1-1 "a"`)
	x.advance(time.Second)
	x.wantEvents("loss 2-2 n=1 source-gone", "gone expired")
	if n := x.r.Stats().Sources; n != 0 {
		t.Fatalf("%d sources left", n)
	}
}
