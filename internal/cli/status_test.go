package cli

import (
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

type lockedBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuilder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuilder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestStatus: the line is redrawn in place each period, cut to the
// width; other output erases it first; Stop erases it.
func TestStatus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out lockedBuilder
		n := 0
		s := StartStatus(&out, 12, time.Second, func() string { n++; return strings.Repeat("x", n) + " long tail to cut" })
		time.Sleep(2500 * time.Millisecond)
		s.Write([]byte("event\n"))
		time.Sleep(time.Second)
		s.Stop()
		s.Stop()
		want := "\r\x1b[Kx long tail" + "\r\x1b[Kxx long tai" + "\r\x1b[Kevent\n" + "\r\x1b[Kxxx long ta" + "\r\x1b[K"
		if got := out.String(); got != want {
			t.Errorf("got  %q\nwant %q", got, want)
		}
	})
}

func TestMeterProgress(t *testing.T) {
	var m Meter
	t0 := time.Unix(1000, 0)
	if r, b := m.Update(t0, 10, 1000); r != 0 || b != 0 {
		t.Errorf("first update: %v %v", r, b)
	}
	if r, b := m.Update(t0.Add(2*time.Second), 30, 5000); r != 10 || b != 2000 {
		t.Errorf("rates %v %v", r, b)
	}
	for _, tc := range []struct {
		done, total uint64
		want        string
	}{
		{0, 8e6, "[..........]   0% 0.0 MB/8.0 MB"},
		{4e6, 8e6, "[#####.....]  50% 4.0 MB/8.0 MB"},
		{8e6, 8e6, "[##########] 100% 8.0 MB/8.0 MB"},
		{0, 0, "[##########] 100% 0.0 MB/0.0 MB"},
	} {
		if got := ProgressBar(tc.done, tc.total, 10); got != tc.want {
			t.Errorf("ProgressBar(%d, %d) = %q; want %q", tc.done, tc.total, got, tc.want)
		}
	}
	for _, tc := range []struct {
		left uint64
		rate float64
		want string
	}{{100, 0, "--:--"}, {100, 10, "0:10"}, {7200e6, 1e6, "2:00:00"}, {90, 1, "1:30"}} {
		if got := ETA(tc.left, tc.rate); got != tc.want {
			t.Errorf("ETA(%d, %v) = %q; want %q", tc.left, tc.rate, got, tc.want)
		}
	}
}
