package wire

import (
	"fmt"
	"testing"
)

func BenchmarkChecksum(b *testing.B) {
	for _, n := range []int{64, 1400, 9000} {
		buf := make([]byte, n)
		for i := range buf {
			buf[i] = byte(i*7 + 3)
		}
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				Checksum(buf)
			}
		})
	}
}

// odata1000 is an encoded ODATA with a 1000-byte payload.
func odata1000(b *testing.B) (Packet, []byte) {
	payload := make([]byte, 1000)
	for i := range payload {
		payload[i] = byte(i)
	}
	p := Packet{SPort: 10000, DPort: 7500, Type: TypeODATA, GSI: gsi, Seq: 100, Trail: 90, Payload: payload}
	enc, err := p.Append(nil)
	if err != nil {
		b.Fatal(err)
	}
	return p, enc
}

func BenchmarkParseODATA(b *testing.B) {
	_, enc := odata1000(b)
	var p Packet
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		if err := Parse(enc, &p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendODATA(b *testing.B) {
	p, enc := odata1000(b)
	buf := make([]byte, 0, len(enc))
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		buf, err = p.Append(buf[:0])
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseNAKList(b *testing.B) {
	enc := goldenBytes("NAK/IPv4/list62")
	var p Packet
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		if err := Parse(enc, &p); err != nil {
			b.Fatal(err)
		}
	}
}
