package mcast_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/relmcast/relmcast/mcast"
	"github.com/relmcast/relmcast/mcast/mcasttest"
)

// failingWrites is a transport whose writes all fail.
type failingWrites struct{ mcast.Transport }

func (failingWrites) WriteBatch([]mcast.Datagram) (int, error) {
	return 0, errors.New("network is unreachable")
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLoggerSendErrors: socket errors reach Config.Logger, once and then
// sparingly, not once per packet.
func TestLoggerSendErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := mcasttest.NewNetwork(mcasttest.NetworkConfig{})
		defer nw.Close()
		var out syncBuffer
		s, err := mcast.NewSender(group, &mcast.Config{
			Transport:     nw.Endpoint(netip.MustParseAddr("10.0.0.1"), group.Port()),
			WrapTransport: func(tr mcast.Transport) mcast.Transport { return failingWrites{tr} },
			Logger:        slog.New(slog.NewTextHandler(&out, nil)),
			Linger:        -1,
		})
		if err != nil {
			t.Fatal(err)
		}
		for range 100 {
			s.Write([]byte("x"))
		}
		time.Sleep(time.Second)
		s.Close()
		if got := strings.Count(out.String(), "send failed"); got != 1 || !strings.Contains(out.String(), "network is unreachable") {
			t.Fatalf("log:\n%s", out.String())
		}
	})
}

// blockingWriter blocks every Write until release is closed.
type blockingWriter struct {
	entered chan struct{} // gets a value at each Write
	release chan struct{}
}

func (w blockingWriter) Write(p []byte) (int, error) {
	select {
	case w.entered <- struct{}{}:
	default:
	}
	<-w.release
	return len(p), nil
}

// TestLoggerOutsideLock: a log handler stuck while it logs a new source
// does not hold up Read: the events of that pass are read meanwhile.
func TestLoggerOutsideLock(t *testing.T) {
	nw := mcasttest.NewNetwork(mcasttest.NetworkConfig{})
	defer nw.Close()
	ep := nw.Endpoint(netip.MustParseAddr("10.0.1.1"), 0)
	ep.Join(group)
	w := blockingWriter{entered: make(chan struct{}, 1), release: make(chan struct{})}
	r, err := mcast.Listen(group, &mcast.Config{Transport: ep, Logger: slog.New(slog.NewTextHandler(w, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var once sync.Once
	release := func() { once.Do(func() { close(w.release) }) }
	defer release()
	s, err := mcast.NewSender(group, &mcast.Config{
		Transport: nw.Endpoint(netip.MustParseAddr("10.0.0.1"), group.Port()), Linger: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.entered: // the loop is logging "source new", and stuck there
	case <-time.After(10 * time.Second):
		t.Fatal("nothing logged")
	}
	got := make(chan error, 1)
	var ev mcast.Event
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		got <- r.Read(ctx, &ev)
	}()
	select {
	case err := <-got:
		if err != nil || ev.Kind != mcast.EventSourceNew {
			t.Fatalf("Read: %v, %v", err, &ev)
		}
	case <-time.After(5 * time.Second):
		release()
		t.Fatal("Read waited for the log handler")
	}
}
