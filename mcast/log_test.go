package mcast_test

import (
	"bytes"
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
