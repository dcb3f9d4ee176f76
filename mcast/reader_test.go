package mcast

import (
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"
)

// pollFake is a Transport with TryReadBatch and SetReadDeadline: it hands
// out the payloads pushed to it and records how they were read.
type pollFake struct {
	mu        sync.Mutex
	queue     [][]byte
	deadline  time.Time
	tries     int // TryReadBatch calls that returned data
	waits     int // ReadBatch calls that returned data
	deadlines int // ReadBatch calls ended by the deadline
	closed    bool
	wake      chan struct{}
}

func newPollFake() *pollFake { return &pollFake{wake: make(chan struct{}, 1)} }

func (f *pollFake) push(b []byte) {
	f.mu.Lock()
	f.queue = append(f.queue, b)
	f.mu.Unlock()
	notify(f.wake)
}

func (f *pollFake) take(ds []Datagram) int {
	n := 0
	for n < len(ds) && len(f.queue) > 0 {
		ds[n].N = copy(ds[n].Buf, f.queue[0])
		f.queue = f.queue[1:]
		n++
	}
	return n
}

func (f *pollFake) TryReadBatch(ds []Datagram) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0, net.ErrClosed
	}
	if !f.deadline.IsZero() && !time.Now().Before(f.deadline) {
		return 0, os.ErrDeadlineExceeded // as net's RawConn.Read does
	}
	n := f.take(ds)
	if n > 0 {
		f.tries++
	}
	return n, nil
}

func (f *pollFake) SetReadDeadline(t time.Time) error {
	f.mu.Lock()
	f.deadline = t
	f.mu.Unlock()
	return nil
}

func (f *pollFake) ReadBatch(ds []Datagram) (int, error) {
	for {
		f.mu.Lock()
		if f.closed {
			f.mu.Unlock()
			return 0, net.ErrClosed
		}
		if n := f.take(ds); n > 0 {
			f.waits++
			f.mu.Unlock()
			return n, nil
		}
		wait := time.Hour
		if !f.deadline.IsZero() {
			wait = time.Until(f.deadline)
		}
		if wait <= 0 {
			f.deadlines++
			f.mu.Unlock()
			return 0, os.ErrDeadlineExceeded
		}
		f.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-f.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

func (f *pollFake) WriteBatch(ds []Datagram) (int, error) { return len(ds), nil }
func (f *pollFake) LocalAddr() netip.Addr                 { return netip.MustParseAddr("127.0.0.1") }
func (f *pollFake) Close() error {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	notify(f.wake)
	return nil
}

func (f *pollFake) counts() (tries, waits, deadlines int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tries, f.waits, f.deadlines
}

// recvOne waits (bounded) for the next batch from rd and returns its first
// payload.
func recvOne(t *testing.T, rd *reader) string {
	t.Helper()
	select {
	case b := <-rd.rx:
		s := string(b.ds[0].Buf[:b.ds[0].N])
		if b.n != 1 {
			t.Errorf("batch of %d, want 1", b.n)
		}
		rd.release(b)
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("no batch within 5s")
		return ""
	}
}

// TestReaderPollsWhileBusy: a polling reader waits in ReadBatch, bounded
// by idleWait deadlines, while its endpoint is idle, and reads with
// TryReadBatch, out of the network poller, after markBusy.
func TestReaderPollsWhileBusy(t *testing.T) {
	f := newPollFake()
	rd := startReader(f, 64, nil, true)
	defer rd.close()
	if rd.poll == nil {
		t.Fatal("reader does not poll a pollReader")
	}
	f.push([]byte("idle"))
	if got := recvOne(t, rd); got != "idle" {
		t.Fatalf("got %q", got)
	}
	if tries, waits, _ := f.counts(); tries != 0 || waits != 1 {
		t.Fatalf("idle: %d polled reads, %d waiting reads; want 0 and 1", tries, waits)
	}
	// The idle reader's wait ends at its deadline, and it looks again.
	for end := time.Now().Add(5 * time.Second); ; {
		if _, _, d := f.counts(); d > 0 {
			break
		}
		if time.Now().After(end) {
			t.Fatal("the idle reader's wait never reached its deadline")
		}
		time.Sleep(time.Millisecond)
	}
	_, _, d0 := f.counts()
	rd.markBusy(time.Now().Add(time.Hour)) // busy for an hour
	// The reader may still be in a wait that began before markBusy: its
	// idleWait deadline ends it, and from then on the reader polls.
	for end := time.Now().Add(5 * time.Second); ; {
		if _, _, d := f.counts(); d > d0 {
			break
		}
		if time.Now().After(end) {
			t.Fatal("the idle reader's wait never reached its deadline")
		}
		time.Sleep(time.Millisecond)
	}
	f.push([]byte("busy"))
	if got := recvOne(t, rd); got != "busy" {
		t.Fatalf("got %q", got)
	}
	if tries, waits, _ := f.counts(); tries != 1 || waits != 1 {
		t.Fatalf("busy: %d polled reads, %d waiting reads; want 1 and 1", tries, waits)
	}
}

// TestReaderNoPoll: without poll (a Receiver) the reader only waits.
func TestReaderNoPoll(t *testing.T) {
	f := newPollFake()
	rd := startReader(f, 64, nil, false)
	defer rd.close()
	rd.markBusy(time.Now().Add(time.Hour))
	f.push([]byte("x"))
	if got := recvOne(t, rd); got != "x" {
		t.Fatalf("got %q", got)
	}
	if tries, waits, _ := f.counts(); tries != 0 || waits != 1 {
		t.Fatalf("%d polled reads, %d waiting reads; want 0 and 1", tries, waits)
	}
}
