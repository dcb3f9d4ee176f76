package zmqpgm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// collect feeds apdus to d and returns the messages, each as its frames.
func collect(t *testing.T, d *Decoder, apdus ...[]byte) [][]string {
	t.Helper()
	var got [][]string
	for i, a := range apdus {
		if err := d.Feed(a, func(frames [][]byte) {
			m := make([]string, len(frames))
			for j, f := range frames {
				m[j] = string(f)
			}
			got = append(got, m)
		}); err != nil {
			t.Fatalf("Feed(apdu %d): %v", i, err)
		}
	}
	return got
}

func apdu(off uint16, parts ...[]byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, off)
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func frame(body string, more bool) []byte { return AppendFrame(nil, []byte(body), more) }

// TestDecodeZeroMQExample decodes the stream a ZeroMQ 4.3 PUB sent for a
// two-frame message "topic" "body-1", then "single", then 300 x "x"
// (research/openpgm.md §10.2), cut across three APDUs at awkward places.
func TestDecodeZeroMQExample(t *testing.T) {
	stream := append(append(append(frame("topic", true), frame("body-1", false)...),
		frame("single", false)...), frame(strings.Repeat("x", 300), false)...)
	if got := stream[:16]; !bytes.Equal(got, []byte("\x06\x01topic\x07\x00body-1\x07")) {
		t.Fatalf("frames encode as % x", got)
	}
	long := len(frame("topic", true)) + len(frame("body-1", false)) + len(frame("single", false))
	if !bytes.Equal(stream[long:long+10], []byte{0xff, 0, 0, 0, 0, 0, 0, 0x01, 0x2d, 0}) {
		t.Fatalf("long frame header % x", stream[long:long+10])
	}
	// APDU 1 ends inside "single"'s body, APDU 2 inside the long length.
	a1, a2, a3 := stream[:20], stream[20:long+4], stream[long+4:]
	var d Decoder
	got := collect(t, &d, apdu(0, a1), apdu(NoOffset, a2), apdu(NoOffset, a3))
	want := [][]string{{"topic", "body-1"}, {"single"}, {strings.Repeat("x", 300)}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	if d.Partial() {
		t.Error("Partial after the last message")
	}
}

// TestDecodeJoin: a decoder skips APDUs until one names a message start,
// then decodes from that offset.
func TestDecodeJoin(t *testing.T) {
	tail := frame("tail-of-an-earlier-message", false)
	next := frame("first", false)
	var d Decoder
	got := collect(t, &d,
		apdu(NoOffset, []byte("\x03\x01ab")), // mid-stream, no start: skipped
		apdu(uint16(len(tail)), tail, next),  // a message starts after the tail
		apdu(0, frame("second", false)))
	if want := [][]string{{"first"}, {"second"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// TestDecodeOffsetAtEnd: the offset may equal the data length (the next
// message begins in the next APDU, which has offset 0 or NoOffset).
func TestDecodeOffsetAtEnd(t *testing.T) {
	tail := frame("tail", false)
	var d Decoder
	got := collect(t, &d, apdu(uint16(len(tail)), tail), apdu(0, frame("m", false)))
	if want := [][]string{{"m"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	if !d.Joined() {
		t.Error("not joined")
	}
}

// TestDecodeResetAfterLoss: after a loss the partial message is dropped
// and decoding resumes at the next message start, not in the middle of a
// frame.
func TestDecodeResetAfterLoss(t *testing.T) {
	var d Decoder
	long := AppendFrame(nil, bytes.Repeat([]byte("y"), 100), false)
	got := collect(t, &d, apdu(0, frame("a", false), long[:50]))
	if !d.Partial() {
		t.Fatal("no partial message after half a frame")
	}
	// The APDU with long[50:] is lost: Reset. The next APDU starts with
	// the tail of another message that must not be taken for frames.
	d.Reset()
	garbage := []byte("\x05\x00zzzz")
	got = append(got, collect(t, &d, apdu(NoOffset, long[50:]), apdu(uint16(len(garbage)), garbage, frame("b", true), frame("c", false)))...)
	if want := [][]string{{"a"}, {"b", "c"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestDecodeEmptyFrames(t *testing.T) {
	var d Decoder
	got := collect(t, &d, apdu(0, frame("", true), frame("", false), frame("", false)))
	if want := [][]string{{"", ""}, {""}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// TestDecodeLongLengthForShortBody: ZMTP/1.0 may use the 9-byte length for
// any size.
func TestDecodeLongLengthForShortBody(t *testing.T) {
	f := append([]byte{0xff}, binary.BigEndian.AppendUint64(nil, 4)...)
	f = append(f, 0, 'a', 'b', 'c')
	var d Decoder
	if got := collect(t, &d, apdu(0, f)); !reflect.DeepEqual(got, [][]string{{"abc"}}) {
		t.Fatalf("got %q", got)
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		apdu []byte
		max  int
		want error
	}{
		{"empty", nil, 0, ErrMalformed},
		{"one byte", []byte{0}, 0, ErrMalformed},
		{"offset beyond data", apdu(3, []byte{1, 0}), 0, ErrMalformed},
		{"zero length", apdu(0, []byte{0, 0}), 0, ErrMalformed},
		{"zero long length", apdu(0, []byte{0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0}), 0, ErrMalformed},
		{"huge long length", apdu(0, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0}), 0, ErrTooLarge},
		{"over MaxMessage", apdu(0, frame("abcdef", false)), 6, ErrTooLarge},
		{"frames over MaxMessage", apdu(0, frame("ab", true), frame("cd", true)), 5, ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Decoder{MaxMessage: tc.max}
			err := d.Feed(tc.apdu, func([][]byte) { t.Error("message delivered") })
			if !errors.Is(err, tc.want) {
				t.Fatalf("Feed = %v, want %v", err, tc.want)
			}
			if d.Joined() || d.Partial() {
				t.Error("still joined after an error")
			}
			// It recovers at the next message start.
			if got := collect(t, &d, apdu(0, frame("ok", false))); !reflect.DeepEqual(got, [][]string{{"ok"}}) {
				t.Fatalf("after the error: %q", got)
			}
		})
	}
	d := Decoder{MaxMessage: 6}
	if got := collect(t, &d, apdu(0, frame("abcde", false))); len(got) != 1 {
		t.Fatalf("a message of exactly MaxMessage bytes: %q", got)
	}
}

// checkAPDUs checks the rules ZeroMQ subscribers abort on, and the offset.
func checkAPDUs(t *testing.T, apdus [][]byte, max int) {
	t.Helper()
	for i, a := range apdus {
		if len(a) < 3 || len(a) > max {
			t.Fatalf("APDU %d: %d bytes, want 3..%d", i, len(a), max)
		}
		off := binary.BigEndian.Uint16(a)
		if want := uint16(NoOffset); i == 0 {
			want = 0
			if off != want {
				t.Fatalf("APDU %d: offset %#x, want %#x", i, off, want)
			}
		} else if off != want {
			t.Fatalf("APDU %d: offset %#x, want %#x", i, off, want)
		}
	}
}

func TestEncode(t *testing.T) {
	e, err := NewEncoder(MinAPDU)
	if err != nil {
		t.Fatal(err)
	}
	var apdus [][]byte
	emit := func(a []byte) error { apdus = append(apdus, bytes.Clone(a)); return nil }
	if err := e.Encode([][]byte{[]byte("hello")}, emit); err != nil {
		t.Fatal(err)
	}
	if want := [][]byte{[]byte("\x00\x00\x06\x00hello")}; !reflect.DeepEqual(apdus, want) {
		t.Fatalf("got % x, want % x", apdus, want)
	}
	// 14 data bytes per APDU: a 2-frame message of 1+2+2+20 = 25 bytes
	// takes two.
	apdus = nil
	if err := e.Encode([][]byte{[]byte("t"), bytes.Repeat([]byte("z"), 20)}, emit); err != nil {
		t.Fatal(err)
	}
	if len(apdus) != 2 {
		t.Fatalf("%d APDUs, want 2: % x", len(apdus), apdus)
	}
	checkAPDUs(t, apdus, MinAPDU)
	if !bytes.Equal(apdus[0], []byte("\x00\x00\x02\x01t\x15\x00zzzzzzzzz")) {
		t.Fatalf("first APDU % x", apdus[0])
	}
	// Exactly full APDUs: no empty APDU after them.
	apdus = nil
	if err := e.Encode([][]byte{bytes.Repeat([]byte("q"), 12)}, emit); err != nil {
		t.Fatal(err)
	}
	if len(apdus) != 1 || len(apdus[0]) != MinAPDU {
		t.Fatalf("a message that fills one APDU: % x", apdus)
	}
	if err := e.Encode(nil, emit); !errors.Is(err, ErrNoFrames) {
		t.Fatalf("Encode(no frames) = %v", err)
	}
	stop := errors.New("stop")
	if err := e.Encode([][]byte{make([]byte, 100)}, func([]byte) error { return stop }); err != stop {
		t.Fatalf("emit's error: %v", err)
	}
	for _, n := range []int{0, MinAPDU - 1, 65536} {
		if _, err := NewEncoder(n); err == nil {
			t.Errorf("NewEncoder(%d) accepted", n)
		}
	}
}

// TestRoundTrip encodes messages of many shapes at several APDU sizes,
// checks ZeroMQ's rules on every APDU, and decodes them back.
func TestRoundTrip(t *testing.T) {
	var msgs [][][]byte
	for _, sizes := range [][]int{{0}, {1}, {253}, {254}, {255}, {1000}, {5, 0, 300}, {3000}, {70000}, {1, 1, 1, 1, 1, 1, 1}} {
		var m [][]byte
		for i, n := range sizes {
			f := make([]byte, n)
			for j := range f {
				f[j] = byte(i*7 + j)
			}
			m = append(m, f)
		}
		msgs = append(msgs, m)
	}
	for _, max := range []int{MinAPDU, 17, 100, 1428, 1448, 65535} {
		t.Run(fmt.Sprint(max), func(t *testing.T) {
			e, err := NewEncoder(max)
			if err != nil {
				t.Fatal(err)
			}
			var d Decoder
			var got [][][]byte
			for _, m := range msgs {
				var apdus [][]byte
				if err := e.Encode(m, func(a []byte) error { apdus = append(apdus, bytes.Clone(a)); return nil }); err != nil {
					t.Fatal(err)
				}
				checkAPDUs(t, apdus, max)
				for _, a := range apdus {
					if err := d.Feed(a, func(frames [][]byte) {
						var c [][]byte
						for _, f := range frames {
							c = append(c, bytes.Clone(f))
						}
						got = append(got, c)
					}); err != nil {
						t.Fatal(err)
					}
				}
			}
			if len(got) != len(msgs) {
				t.Fatalf("round trip: got %d messages, want %d", len(got), len(msgs))
			}
			for i := range msgs {
				if len(got[i]) != len(msgs[i]) {
					t.Fatalf("message %d: %d frames, want %d", i, len(got[i]), len(msgs[i]))
				}
				for j := range msgs[i] {
					if !bytes.Equal(got[i][j], msgs[i][j]) {
						t.Fatalf("message %d frame %d differs", i, j)
					}
				}
			}
		})
	}
}

func TestEncodeDecodeAllocs(t *testing.T) {
	e, _ := NewEncoder(1448)
	var d Decoder
	frames := [][]byte{[]byte("topic"), bytes.Repeat([]byte("b"), 2000)}
	n := 0
	fn := func([][]byte) { n++ }
	feed := func(a []byte) error { return d.Feed(a, fn) }
	e.Encode(frames, feed) // warm up the buffers
	n = 0
	if a := testing.AllocsPerRun(100, func() { e.Encode(frames, feed) }); a != 0 {
		t.Errorf("%v allocations per message", a)
	}
	if n != 101 { // AllocsPerRun runs once more to warm up
		t.Errorf("%d messages decoded, want 101", n)
	}
}
