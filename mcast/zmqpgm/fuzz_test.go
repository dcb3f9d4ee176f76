package zmqpgm

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// FuzzDecode feeds arbitrary APDUs (the input cut at lengths given by its
// own bytes) to a Decoder, with a Reset now and then, and checks that it
// never panics, never delivers a message without frames or above
// MaxMessage, and recovers at the next message start.
func FuzzDecode(f *testing.F) {
	f.Add([]byte("\x0a\x00\x00\x06\x01topic\x02\x00x"))
	f.Add([]byte("\x05\xff\xff\x03\x00a\x04\x00\x00\x02\x00b"))
	f.Add([]byte("\x0c\x00\x00\xff\x00\x00\x00\x00\x00\x00\x01\x2d\x00"))
	f.Add([]byte("\x00\x01\x03\x00\x00"))
	f.Fuzz(func(t *testing.T, in []byte) {
		d := Decoder{MaxMessage: 4096}
		for len(in) > 0 {
			n := int(in[0])
			in = in[1:]
			if n == 0 {
				d.Reset()
				continue
			}
			n = min(n, len(in))
			a := in[:n]
			in = in[n:]
			d.Feed(a, func(frames [][]byte) {
				if len(frames) == 0 {
					t.Fatal("a message without frames")
				}
				size := 0
				for _, fr := range frames {
					size += len(fr) + 1
				}
				if size > d.MaxMessage {
					t.Fatalf("a message of %d bytes, above MaxMessage", size)
				}
			})
		}
		// Whatever came before, a message start is decoded.
		d.Reset()
		got := 0
		if err := d.Feed([]byte("\x00\x00\x03\x00ok"), func(frames [][]byte) {
			if len(frames) != 1 || string(frames[0]) != "ok" {
				t.Fatalf("got %q", frames)
			}
			got++
		}); err != nil || got != 1 {
			t.Fatalf("after Reset: %v, %d messages", err, got)
		}
	})
}

// FuzzRoundTrip encodes frames cut from the input into APDUs of a size
// taken from it and decodes them back.
func FuzzRoundTrip(f *testing.F) {
	f.Add(uint16(16), []byte("\x05hello\x00\x03abc"))
	f.Add(uint16(1448), bytes.Repeat([]byte{0xff}, 600))
	f.Fuzz(func(t *testing.T, max uint16, in []byte) {
		e, err := NewEncoder(int(max))
		if err != nil {
			return
		}
		var frames [][]byte
		for len(in) > 0 {
			n := min(int(in[0])*3, len(in)-1)
			frames = append(frames, in[1:1+n])
			in = in[1+n:]
		}
		if len(frames) == 0 {
			frames = [][]byte{nil}
		}
		var d Decoder
		got := 0
		first := true
		err = e.Encode(frames, func(a []byte) error {
			if len(a) < 3 || len(a) > int(max) {
				t.Fatalf("APDU of %d bytes, max %d", len(a), max)
			}
			off := binary.BigEndian.Uint16(a)
			if first && off != 0 || !first && off != NoOffset {
				t.Fatalf("offset %#x", off)
			}
			first = false
			return d.Feed(a, func(fs [][]byte) {
				got++
				if len(fs) != len(frames) {
					t.Fatalf("%d frames, want %d", len(fs), len(frames))
				}
				for i := range fs {
					if !bytes.Equal(fs[i], frames[i]) {
						t.Fatalf("frame %d differs", i)
					}
				}
			})
		})
		if err != nil || got != 1 {
			t.Fatalf("Encode: %v; %d messages decoded", err, got)
		}
	})
}
