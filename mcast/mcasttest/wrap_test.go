package mcasttest

import (
	"encoding/binary"
	"testing"
	"testing/synctest"

	"github.com/relmcast/relmcast/internal/lossy"
)

// lossy.Wrap works over an Endpoint like over a real socket: here it only
// impairs data datagrams (first byte 'D'), and three unimpaired 'E'nd
// markers flush the datagrams it still holds back (each waits for at most
// three later deliveries).
func TestLossyWrapOverEndpoint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const count = 2000
		n := NewNetwork(NetworkConfig{})
		defer n.Close()
		a, b := n.Endpoint(h1, 1), n.Endpoint(h2, 1)
		b.Join(group)
		c := lossy.Wrap(b, lossy.Config{
			Loss: 0.1, Reorder: 0.1, Duplicate: 0.1, Seed: 3,
			Filter: func(p []byte) bool { return p[0] == 'D' },
		})
		defer c.Close()
		if c.LocalAddr() != h2 {
			t.Errorf("LocalAddr = %v", c.LocalAddr())
		}

		go func() {
			ds := make([]Datagram, 16)
			for i := range count {
				p := make([]byte, 5)
				p[0] = 'D'
				binary.BigEndian.PutUint32(p[1:], uint32(i))
				ds = append(ds[:0], Datagram{Buf: p, N: 5, Addr: group})
				if _, err := a.WriteBatch(ds); err != nil {
					t.Error(err)
					return
				}
			}
			send(t, a, group, "E", "E", "E")
		}()

		got := map[uint32]int{}
		inversions, ends, last := 0, 0, -1
		ds := make([]Datagram, 8)
		for i := range ds {
			ds[i].Buf = make([]byte, 64)
		}
		for ends < 3 {
			k, err := c.ReadBatch(ds)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range ds[:k] {
				if d.Addr != a.AddrPort() || d.Dst != group.Addr() {
					t.Fatalf("Addr %v Dst %v", d.Addr, d.Dst)
				}
				if d.Buf[0] == 'E' {
					ends++
					continue
				}
				s := binary.BigEndian.Uint32(d.Buf[1:d.N])
				got[s]++
				if int(s) < last {
					inversions++
				}
				last = int(s)
			}
		}
		st := c.Stats()
		total, dups := 0, 0
		for _, k := range got {
			total += k
			dups += k - 1
		}
		if want := count - int(st.Dropped) + int(st.Duplicated); total != want {
			t.Errorf("received %d data datagrams, want %d (stats %+v)", total, want, st)
		}
		if uint64(dups) != st.Duplicated || inversions == 0 || st.Dropped == 0 {
			t.Errorf("%d duplicates, %d inversions, stats %+v", dups, inversions, st)
		}
		if st.Datagrams != count+3 {
			t.Errorf("Datagrams = %d, want %d", st.Datagrams, count+3)
		}
		// The endpoint itself dropped nothing: the impairment is all Wrap's.
		if est := b.Stats(); est.Dropped != 0 || est.Received != count+3 {
			t.Errorf("endpoint stats %+v", est)
		}
	})
}
