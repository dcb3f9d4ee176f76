package session

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/relmcast/relmcast/internal/wire"
	"github.com/relmcast/relmcast/nak"
)

// FuzzReceiver feeds a Receiver core arbitrary packet sequences and time
// steps, from a few sources, and checks after every step: no panic; per
// source, events in order (SourceNew first, then data and losses with
// strictly increasing sequence numbers, SourceGone last); memory bounded
// by the configured window and source limits.
func FuzzReceiver(f *testing.F) {
	f.Add([]byte{0, 1, 0, 5, 0, 1, 0, 7, 3, 2, 0, 0, 9, 1, 0, 6})
	f.Add([]byte{1, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0, 2, 0, 0, 0, 4, 3, 200, 3, 200, 3, 200})
	f.Add([]byte{0, 0, 0xFF, 0xFF, 0xFF, 0xF0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0xFF, 0xFF, 0})
	f.Add([]byte{2, 0, 0, 0, 0, 3, 4, 0, 0, 0, 0, 5, 0, 1, 0x80, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, in []byte) {
		const window = 256
		r := NewReceiver(ReceiverConfig{DPort: 7500, Group: testGroup, Window: window, MaxSources: 4,
			SourceExpiry: 2 * time.Second, NAK: nak.Config{MaxPending: 1024}})
		now := time.Unix(1, 0)
		type stream struct {
			announced, gone bool
			last            uint64
			have            bool
		}
		streams := map[wire.TSI]*stream{}
		check := func() {
			r.Deliver(func(e *Event) bool {
				st := streams[e.Source]
				if st == nil {
					st = &stream{}
					streams[e.Source] = st
				}
				switch e.Kind {
				case EventSourceNew, EventSourceRestart:
					if e.Kind == EventSourceRestart && e.Prev == e.Source {
						st.gone = true // a restart with the same TSI ends its stream
					}
					if st.announced && !st.gone {
						t.Fatalf("%v announced twice", e.Source)
					}
					*st = stream{announced: true}
				case EventData, EventLoss:
					if !st.announced || st.gone {
						t.Fatalf("%v before new or after gone", e.Kind)
					}
					first := uint64(e.First)
					if st.have && uint32(first-st.last) == 0 || st.have && int32(e.First-uint32(st.last)) <= 0 {
						t.Fatalf("%v at %d after %d", e.Kind, e.First, st.last)
					}
					if e.Kind == EventLoss && (e.Lost == 0 || uint32(e.Lost-1) != e.Last-e.First) {
						t.Fatalf("loss %d-%d counts %d", e.First, e.Last, e.Lost)
					}
					st.last, st.have = uint64(e.Last), true
				case EventSourceGone:
					st.gone = true
				}
				return true
			})
			for _, s := range r.sources {
				if len(s.ring) > 2*window || s.nak.Len() > window+1 {
					t.Fatalf("window grew: ring %d, tracked %d", len(s.ring), s.nak.Len())
				}
			}
			if len(r.sources) > 4 || len(r.tombs) > 4 {
				t.Fatalf("%d sources, %d tombs", len(r.sources), len(r.tombs))
			}
			for {
				if _, _, ok := r.Poll(nil); !ok {
					break
				}
			}
		}
		for len(in) >= 6 {
			op, src := in[0]%6, in[1]%3
			v := binary.BigEndian.Uint32(in[2:6])
			in = in[6:]
			p := wire.Packet{SPort: 100 + uint16(src), DPort: 7500, GSI: wire.GSI{src}, Seq: v}
			if len(in) >= 4 {
				p.Trail = v - uint32(in[0])*uint32(in[1]) // usually close behind
			}
			switch op {
			case 0, 1:
				p.Type = wire.TypeODATA
				if op == 1 {
					p.Type = wire.TypeRDATA
				}
				p.Payload = in[:min(len(in), 3)]
				if len(in) > 0 && in[0]&0x80 != 0 {
					n := uint32(in[0] & 7)
					p.HasFragment = true
					p.Fragment = wire.Fragment{First: v - n, Offset: n * 3, Length: 3*n + 3 + uint32(in[0]>>3&1)}
				}
			case 2:
				p.Type, p.Lead, p.PathNLA = wire.TypeSPM, v+uint32(len(in)%7), testSrc
				p.FIN = len(in)%5 == 0
			case 3:
				now = now.Add(time.Duration(v%3000) * time.Millisecond)
				r.Advance(now)
				check()
				continue
			case 4:
				p.Type, p.SourceNLA, p.GroupNLA = wire.TypeNCF, testSrc, testGroup
			case 5:
				p.Type, p.SourceNLA, p.GroupNLA = wire.TypeNAK, testSrc, testGroup
			}
			b, err := p.Append(nil)
			if err != nil {
				continue
			}
			var q wire.Packet
			if wire.Parse(b, &q) != nil {
				continue
			}
			r.HandlePacket(now, &q, testSrc)
			check()
		}
	})
}
