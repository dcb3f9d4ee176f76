package session

// Fuzz targets that feed the cores raw datagrams, as the owner does (bytes
// through wire.Parse), interleaved with time steps, reads and sends, and
// check invariants after every step. Their seed corpora in
// testdata/fuzz/ include traffic captured from real sender/receiver
// pairs over the in-memory network (go test ./soak -run
// TestCaptureFuzzSeeds -capture), so that mutations start from packets
// that get deep into the cores. The seeds run with every go test; a long
// run: go test -run '^$' -fuzz FuzzReceiverWire -fuzztime 5m ./session

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/relmcast/relmcast/internal/wire"
	"github.com/relmcast/relmcast/nak"
)

// Fuzz record operations: the low 3 bits of a record's first byte.
const (
	fzDatagram = iota // 2-byte length, then the datagram as received
	fzFixed           // the same, with the checksum (and ports) made valid
	fzTime            // 2-byte step, in 100 µs units
	fzRead            // read up to the next byte's value in events (receiver); send (sender)
	fzReadAll         // read everything (receiver); poll everything due (sender)
	fzClose           // sender: Close; receiver: read nothing for a while
)

// fuzzRecords calls fn for each record of in: its op, its argument byte
// (the first byte's high bits) and its data (2-byte length prefixed, for
// datagrams; the next 2 bytes otherwise).
func fuzzRecords(in []byte, fn func(op, arg byte, data []byte) bool) {
	for len(in) >= 3 {
		op, arg := in[0]&7, in[0]>>3
		n := int(binary.BigEndian.Uint16(in[1:3]))
		in = in[3:]
		var data []byte
		switch op {
		case fzDatagram, fzFixed:
			n = min(n, len(in))
			data, in = in[:n], in[n:]
		default:
			data = []byte{byte(n >> 8), byte(n)}
		}
		if !fn(op, arg, data) {
			return
		}
	}
}

// fixDatagram makes the fuzzer's datagram pass the checksum (which it
// cannot compute), and for downstream types gives it the receiver's port.
func fixDatagram(b []byte, dport uint16) []byte {
	if len(b) < wire.HeaderLen {
		return b
	}
	b = append([]byte(nil), b...)
	if wire.Type(b[4]).Downstream() {
		binary.BigEndian.PutUint16(b[2:], dport)
	}
	wire.SetChecksum(b)
	return b
}

// rxStream is what a fuzz run knows of one source's event stream.
type rxStream struct {
	announced, gone, have bool
	last                  uint32
}

// FuzzReceiverWire feeds a Receiver core arbitrary datagrams from two
// addresses, time steps and reads of any size (an application that stops
// reading included). After every step: no panic; per source, SourceNew or
// SourceRestart first, SourceGone last, and in between data and losses
// that account for every sequence number exactly once, in order (no
// duplicate, no gap); memory and NAK state within the configured bounds.
func FuzzReceiverWire(f *testing.F) {
	spm := func(seq, trail, lead uint32) []byte {
		p := wire.Packet{Type: wire.TypeSPM, SPort: testTSI.Port, DPort: testPort, GSI: testTSI.GSI,
			Seq: seq, Trail: trail, Lead: lead, PathNLA: testSrc}
		b, _ := p.Append(nil)
		return b
	}
	odata := func(seq, trail uint32, payload string) []byte {
		p := wire.Packet{Type: wire.TypeODATA, SPort: testTSI.Port, DPort: testPort, GSI: testTSI.GSI,
			Seq: seq, Trail: trail, Payload: []byte(payload)}
		b, _ := p.Append(nil)
		return b
	}
	rec := func(op byte, b []byte) []byte {
		return append([]byte{op, byte(len(b) >> 8), byte(len(b))}, b...)
	}
	var seed []byte
	seed = append(seed, rec(fzDatagram, spm(0, 0, 9))...)
	seed = append(seed, rec(fzDatagram, odata(10, 0, "a"))...)
	seed = append(seed, rec(fzDatagram, odata(12, 0, "c"))...)
	seed = append(seed, fzTime, 0, 200, fzReadAll, 0, 0)
	seed = append(seed, rec(fzDatagram, spm(0, 0, 0xFFFFFFFF))...)
	seed = append(seed, rec(fzDatagram, spm(1, 0, 0xFFFFFFFF))...)
	seed = append(seed, rec(fzFixed|8, odata(0, 0, "new"))...)
	f.Add(seed)
	// A batching source (the batch dport, OPT_BATCH).
	bp := wire.Packet{Type: wire.TypeODATA, SPort: testTSI.Port + 1, DPort: BatchDPort(testPort), GSI: testTSI.GSI,
		Seq: 5, Payload: wire.AppendBatched(wire.AppendBatched(nil, []byte("ab")), nil), Batch: true}
	bb, _ := bp.Append(nil)
	f.Add(append(rec(fzDatagram, bb), fzReadAll, 0, 0))
	f.Fuzz(func(t *testing.T, in []byte) {
		const window = 256
		r := NewReceiver(ReceiverConfig{DPort: testPort, BatchDPort: BatchDPort(testPort), Group: testGroup, Window: window, MaxSources: 4,
			SourceExpiry: 2 * time.Second, JoinBackfill: 16, Seed: 1,
			NAK: nak.Config{BackoffIvl: 10 * time.Millisecond, RepeatIvl: 50 * time.Millisecond,
				RdataIvl: 100 * time.Millisecond, NCFRetries: 3, DataRetries: 3}})
		from := [2]netip.Addr{testSrc, netip.MustParseAddr("10.0.0.1")}
		now := time.Unix(1, 0)
		streams := map[wire.TSI]*rxStream{}
		event := func(e *Event) bool {
			st := streams[e.Source]
			if st == nil {
				st = &rxStream{}
				streams[e.Source] = st
			}
			switch e.Kind {
			case EventSourceNew, EventSourceRestart:
				if e.Kind == EventSourceRestart {
					// The end of the previous session's stream; or, for
					// the same TSI started over after its tombstone, a
					// stream that ended with its gone event.
					if p := streams[e.Prev]; p == nil || !p.announced || p.gone && e.Prev != e.Source {
						t.Fatalf("%v restarts %v, which was not announced or is gone", e.Source, e.Prev)
					} else {
						p.gone = true
					}
				}
				if st.announced && !st.gone {
					t.Fatalf("%v announced twice", e.Source)
				}
				*st = rxStream{announced: true}
			case EventData, EventLoss:
				if n, err := wire.CheckBatch(e.Data); e.Batch > 0 && (n != e.Batch || err != nil) {
					t.Fatalf("batch of %d messages: %d, %v", e.Batch, n, err)
				}
				if !st.announced || st.gone {
					t.Fatalf("%v %v before new or after gone", e.Source, e.Kind)
				}
				if st.have && e.First != st.last+1 {
					t.Fatalf("%v %v %d-%d after %d: duplicate or gap", e.Source, e.Kind, e.First, e.Last, st.last)
				}
				if n := e.Last - e.First; n >= 1<<31 || e.Kind == EventLoss && e.Lost != uint64(n)+1 {
					t.Fatalf("%v %v %d-%d counts %d", e.Source, e.Kind, e.First, e.Last, e.Lost)
				}
				st.last, st.have = e.Last, true
			case EventSourceGone:
				if !st.announced || st.gone {
					t.Fatalf("%v gone twice or before new", e.Source)
				}
				st.gone = true
			}
			return true
		}
		var out []byte
		fuzzRecords(in, func(op, arg byte, data []byte) bool {
			switch op {
			case fzDatagram, fzFixed:
				if op == fzFixed {
					data = fixDatagram(data, testPort)
				}
				var p wire.Packet
				if wire.Parse(data, &p) == nil {
					r.HandlePacket(now, &p, from[arg&1])
				}
			case fzTime:
				now = now.Add(time.Duration(binary.BigEndian.Uint16(data)) * 100 * time.Microsecond)
				if d := r.NextDeadline(); !d.IsZero() && !now.Before(d) {
					r.Advance(now)
				}
			case fzRead:
				n := int(data[1])
				r.Deliver(func(e *Event) bool {
					if n == 0 {
						return false
					}
					n--
					return event(e)
				})
			case fzReadAll:
				r.Deliver(event)
			case fzClose: // the application does not read: only time passes
			default:
				var ok bool
				for ok = true; ok; {
					out, _, ok = r.Poll(out[:0])
				}
			}
			checkBounds(t, r)
			if d := r.NextDeadline(); !d.IsZero() && d.Before(now.Add(-r.cfg.SourceExpiry)) {
				t.Fatalf("deadline %v long before now %v", d, now)
			}
			return true
		})
		// In the end, time runs out and everything is read: every source
		// that was announced is gone, every stream complete.
		for range 100 {
			now = now.Add(time.Second)
			r.Advance(now)
			r.Deliver(event)
			for ok := true; ok; {
				out, _, ok = r.Poll(out[:0])
			}
		}
		for tsi, st := range streams {
			if !st.gone {
				t.Fatalf("%v never gone", tsi)
			}
		}
		if n := len(r.sources); n != 0 {
			t.Fatalf("%d sources left", n)
		}
	})
}

// FuzzSenderWire feeds a Sender core arbitrary upstream datagrams (NAKs,
// SPMRs, anything), sends, time steps and polls. After every step: no
// panic; the window, queue and repair state within their bounds; what
// Poll returns parses, and not before NextDeadline said; ODATA and RDATA
// within the rate limit; at most one repair per sequence number per NAK
// elimination interval; at most one NCF per NAK received.
func FuzzSenderWire(f *testing.F) {
	rec := func(op byte, b []byte) []byte {
		return append([]byte{op, byte(len(b) >> 8), byte(len(b))}, b...)
	}
	nakb := func(seqs ...uint32) []byte {
		p := fuzzTxNAK(seqs...)
		b, _ := p.Append(nil)
		return b
	}
	var seed []byte
	seed = append(seed, fzRead, 0x10, 0, fzRead, 0x05, 0, fzReadAll, 0, 0, fzTime, 0, 50, fzReadAll, 0, 0)
	seed = append(seed, rec(fzDatagram, nakb(0, 1, 2, 5))...)
	seed = append(seed, fzReadAll, 0, 0, fzTime, 0, 100, fzReadAll, 0, 0)
	seed = append(seed, rec(fzDatagram, nakb(1))...)
	seed = append(seed, fzReadAll, 0, 0, fzClose, 0, 0, fzTime, 0xFF, 0xFF, fzReadAll, 0, 0)
	f.Add(seed)
	f.Fuzz(func(t *testing.T, in []byte) {
		cfg := fuzzTxConfig()
		s, err := NewSender(cfg, txT0)
		if err != nil {
			t.Fatal(err)
		}
		cfg = s.Config()
		now := txT0
		var (
			charged  int64 // ODATA and RDATA bytes on the wire, IP overhead included
			naks     uint64
			ncfs     uint64
			repaired = map[uint32]time.Time{}
			buf      []byte
			msg      = make([]byte, cfg.MaxMessage)
		)
		fuzzRecords(in, func(op, arg byte, data []byte) bool {
			switch op {
			case fzDatagram, fzFixed:
				if op == fzFixed {
					data = fixDatagram(data, txDPort)
				}
				var p wire.Packet
				if wire.Parse(data, &p) == nil {
					s.HandlePacket(now, &p, txPeer)
				}
			case fzTime:
				now = now.Add(time.Duration(binary.BigEndian.Uint16(data)) * 100 * time.Microsecond)
			case fzRead:
				n := int(binary.BigEndian.Uint16(data)) % (cfg.MaxMessage + 1)
				if err := s.Send(now, msg[:n]); err != nil && err != ErrWouldBlock && err != ErrClosed {
					t.Fatalf("Send(%d bytes): %v", n, err)
				}
			case fzClose:
				s.Close(now)
			default: // poll everything due now
				for range 10000 {
					d := s.NextDeadline()
					var ok bool
					buf, ok = s.Poll(now, buf[:0])
					if !ok {
						break
					}
					if d.IsZero() || d.After(now) {
						t.Fatalf("Poll sent at %v, NextDeadline said %v", now, d)
					}
					var p wire.Packet
					if err := wire.Parse(buf, &p); err != nil {
						t.Fatalf("Poll returned a bad packet: %v", err)
					}
					switch p.Type {
					case wire.TypeODATA:
						charged += int64(len(buf) + cfg.IPOverhead)
					case wire.TypeRDATA:
						charged += int64(len(buf) + cfg.IPOverhead)
						if last, ok := repaired[p.Seq]; ok && now.Sub(last) < cfg.NAKElim {
							t.Fatalf("sqn %d repaired twice within %v", p.Seq, now.Sub(last))
						}
						repaired[p.Seq] = now
					case wire.TypeNCF:
						ncfs++
					}
				}
			}
			st := s.Stats()
			naks = st.NAKs
			switch {
			case charged > int64(cfg.Burst)+cfg.Rate*int64(now.Sub(txT0))/int64(time.Second):
				t.Fatalf("%d bytes sent in %v at %d bytes/s", charged, now.Sub(txT0), cfg.Rate)
			case ncfs > naks:
				t.Fatalf("%d NCFs for %d NAKs", ncfs, naks)
			case st.WindowPackets > cfg.WindowPackets || st.WindowBytes > cfg.WindowBytes ||
				st.Queued > cfg.MaxQueued || st.RepairsQueued > st.WindowPackets ||
				s.rqLen > 2*cfg.WindowPackets || len(s.slots) > txPow2(cfg.WindowPackets+cfg.MaxQueued) ||
				s.ncfLen > txNCFQueue:
				t.Fatalf("bounds: %+v rq %d slots %d", st, s.rqLen, len(s.slots))
			}
			return true
		})
	})
}

// The fuzzed sender is the one whose traffic the seeds captured
// (soak/seeds_test.go): same TSI, NLA, group and port, so that captured
// NAKs and SPMRs are valid for it.
var (
	fuzzTxTSI = wire.TSI{GSI: wire.GSI{0x52, 0x4d, 0x43, 0x53, 0x45, 0x45}, Port: 4000}
	fuzzTxNLA = netip.MustParseAddr("10.0.0.1")
)

func fuzzTxConfig() SenderConfig {
	return SenderConfig{
		TSI: fuzzTxTSI, DPort: txDPort, Group: txGroup, NLA: fuzzTxNLA,
		MaxMessage: 8000, MaxQueued: 64, WindowPackets: 64, WindowBytes: 64 * 1448,
		WindowTime: 2 * time.Second, Rate: 1_000_000,
	}
}

func fuzzTxNAK(seqs ...uint32) wire.Packet {
	p := wire.Packet{SPort: txDPort, DPort: fuzzTxTSI.Port, Type: wire.TypeNAK, GSI: fuzzTxTSI.GSI,
		Seq: seqs[0], SourceNLA: fuzzTxNLA, GroupNLA: txGroup}
	p.NAKListLen = copy(p.NAKList[:], seqs[1:])
	return p
}
