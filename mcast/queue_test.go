package mcast_test

import "testing"

// TestAllocsPerMessageMixed is TestAllocsPerMessage with messages of
// mixed sizes, fragmented ones included: the send and receive queues
// keep their data in one buffer each (no buffer per entry that grows to
// the largest message it held), and still allocate nothing per message.
func TestAllocsPerMessageMixed(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("slow, or under the race detector (see raceEnabled)")
	}
	p := newPipe(t)
	var msgs [][]byte
	for _, n := range []int{0, 100, 1000, 1448, 5000, 20000, 65535} {
		msgs = append(msgs, make([]byte, n))
	}
	i := 0
	next := func() { p.roundTrip(t, msgs[i%len(msgs)]); i++ }
	for range 1000 {
		next()
	}
	n := testing.AllocsPerRun(2000, next)
	t.Logf("%.3f allocations per message, sizes 0 to 65535 bytes", n)
	if n > 0.01 {
		t.Fatalf("%.3f allocations per message", n)
	}
}
