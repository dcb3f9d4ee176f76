package fec_test

import (
	"bytes"
	"fmt"

	"github.com/relmcast/relmcast/fec"
)

// A group of four messages with one pro-active parity packet; the receiver
// loses the second message and rebuilds it from the parity packet.
func Example() {
	code, _ := fec.NewCode(4)
	msgs := []string{"alpha", "be", "", "delta"}

	// Sender.
	enc, _ := fec.NewEncoder(code, 1400, 1)
	for sqn, m := range msgs {
		_ = enc.Add(uint32(sqn), fec.Original{TSDU: []byte(m)})
	}
	p, _ := enc.Parity(make([]byte, 0, 1402), 0)
	fmt.Printf("parity: seq %d, %d bytes, OPT_VAR_PKTLEN %v\n", p.Seq, len(p.Payload), p.VarPktLen)

	// Receiver: ODATA 1 is lost.
	dec, _ := fec.NewDecoder(code, fec.DecoderConfig{MaxTSDU: 1400, Groups: 4})
	var rec []fec.Recovered
	for _, sqn := range []uint32{0, 2, 3} {
		rec, _ = dec.AddOriginal(rec[:0], sqn, fec.Original{TSDU: []byte(msgs[sqn])})
	}
	rec, _ = dec.AddParity(rec[:0], p)
	for _, r := range rec {
		fmt.Printf("rebuilt seq %d: %q (%v)\n", r.Seq, r.TSDU, bytes.Equal(r.TSDU, []byte(msgs[r.Seq])))
	}
	// Output:
	// parity: seq 0, 7 bytes, OPT_VAR_PKTLEN true
	// rebuilt seq 1: "be" (true)
}
