package session

import "testing"

// TestSenderRateBucketExact: sending back to back at readyAt, the bucket never
// lets more than burst + rate*t through, and does not drift below it.
func TestSenderRateBucketExact(t *testing.T) {
	for _, c := range []struct {
		rate  int64
		burst int
		n     int
	}{
		{1e6, 10000, 1500},
		{7_000_003, 10007, 1473},
		{3, 1500, 1500},
		{1e11, 1e6, 1500}, // cost below 1 ns per byte
	} {
		b := newTxBucket(c.rate, c.burst)
		var now int64
		sent := int64(0)
		for range 100000 {
			at := b.readyAt(now, c.n)
			if at < now {
				t.Fatalf("readyAt %d before now %d", at, now)
			}
			if at > now && b.take(at-1, c.n) {
				t.Fatalf("rate %d: took before readyAt", c.rate)
			}
			now = at
			if !b.take(now, c.n) {
				t.Fatalf("rate %d: take refused at readyAt", c.rate)
			}
			sent += int64(c.n)
			// sent <= burst + rate*now/1e9, exactly (in byte-nanoseconds).
			if sent*1e9 > int64(c.burst)*1e9+c.rate*now && sent > int64(c.burst) {
				t.Fatalf("rate %d: %d bytes by %d ns", c.rate, sent, now)
			}
		}
		if sent <= int64(c.burst) {
			continue
		}
		// No drift: the last packet went within 2 ns of the ideal time.
		ideal := (sent - int64(c.burst)) * 1e9 / c.rate
		if now-ideal > 2 || now < ideal {
			t.Errorf("rate %d: last packet at %d ns, ideal %d", c.rate, now, ideal)
		}
	}
	var b txBucket // unlimited
	if !b.take(0, 1<<20) || b.readyAt(5, 1<<20) != 5 {
		t.Error("unlimited bucket limits")
	}
}
