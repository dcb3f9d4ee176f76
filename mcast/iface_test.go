package mcast_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/relmcast/relmcast/mcast"
)

// ipLink runs ip(8) with args (inside the private namespace of
// scripts/netns only).
func ipLink(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// vethInterface creates an up veth pair name/name+"p" (no dummy driver
// in every kernel), name with address addr and multicast on or off,
// deleted at the end of the test.
func vethInterface(t *testing.T, name, addr string, multicast bool) *net.Interface {
	t.Helper()
	if os.Getenv("RELMCAST_NETNS") != "1" {
		t.Skip("changes interfaces: run inside scripts/netns (RELMCAST_NETNS=1)")
	}
	ipLink(t, "link", "add", name, "type", "veth", "peer", "name", name+"p")
	ipLink(t, "link", "set", name+"p", "up")
	t.Cleanup(func() { exec.Command("ip", "link", "del", name).Run() })
	mc := "off"
	if multicast {
		mc = "on"
	}
	ipLink(t, "link", "set", name, "multicast", mc, "up")
	ipLink(t, "addr", "add", addr+"/24", "dev", name)
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return ifi
}

// TestJoinFails: a join on an interface that does not exist, or that
// does not do multicast, fails at once with an error naming both the
// interface and the group, for receivers and senders.
func TestJoinFails(t *testing.T) {
	group := netip.MustParseAddrPort("239.192.7.1:7500")
	nomc := vethInterface(t, "nomc0", "198.18.7.1", false)
	for _, tc := range []struct {
		ifi  *net.Interface
		want string
	}{
		{&net.Interface{Index: 9999, Name: "nosuch0"}, "does not exist"},
		{nomc, "does not do multicast"},
	} {
		cfg := &mcast.Config{Interface: tc.ifi}
		_, errR := mcast.Listen(group, cfg)
		_, errS := mcast.NewSender(group, cfg)
		for _, err := range []error{errR, errS} {
			if err == nil || !strings.Contains(err.Error(), tc.ifi.Name) ||
				!strings.Contains(err.Error(), group.String()) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("interface %s: %v", tc.ifi.Name, err)
			}
		}
		t.Logf("%v", errR)
	}
}

// TestInterfaceGone: a Receiver and a Sender on an interface that is
// deleted while they run. Read returns, after the events queued, an error
// wrapping ErrInterfaceGone that names the interface and the group, and
// so does Send; Close works as ever and leaves nothing running.
func TestInterfaceGone(t *testing.T) {
	group := netip.MustParseAddrPort("239.192.7.2:7500")
	ifi := vethInterface(t, "gone0", "198.18.8.1", true)
	ipLink(t, "route", "add", "239.192.7.0/24", "dev", "gone0")
	cfg := &mcast.Config{Interface: ifi, SourceExpiry: time.Minute}
	r, err := mcast.Listen(group, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s, err := mcast.NewSender(group, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Send(ctx, []byte("before")); err != nil {
		t.Fatal(err)
	}
	var ev mcast.Event
	for ev.Kind != mcast.EventData {
		if err := r.Read(ctx, &ev); err != nil {
			t.Fatalf("before the interface went: %v", err)
		}
	}
	if string(ev.Data) != "before" {
		t.Fatalf("got %q", ev.Data)
	}
	// Two readers wait: each gets the error.
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			var ev mcast.Event
			err := r.Read(ctx, &ev)
			for err == nil {
				err = r.Read(ctx, &ev)
			}
			errs <- err
		}()
	}
	ipLink(t, "link", "del", "gone0")
	start := time.Now()
	for range 2 {
		err = <-errs
		t.Logf("Read after %v: %v", time.Since(start).Round(time.Millisecond), err)
		if !errors.Is(err, mcast.ErrInterfaceGone) || !strings.Contains(err.Error(), "gone0") ||
			!strings.Contains(err.Error(), group.String()) {
			t.Fatalf("Read: %v", err)
		}
	}
	for err = nil; err == nil; {
		err = s.Send(ctx, []byte("after"))
	}
	if !errors.Is(err, mcast.ErrInterfaceGone) || !strings.Contains(err.Error(), "gone0") {
		t.Fatalf("Send: %v", err)
	}
	if err := r.Read(ctx, &ev); !errors.Is(err, mcast.ErrInterfaceGone) {
		t.Fatalf("Read again: %v", err)
	}
	r.Close()
	s.Close()
	if err := r.Read(ctx, &ev); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read after Close: %v", err)
	}
	if err := s.Send(ctx, nil); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
}

// TestInterfaceWatchStops: Close of a Receiver and a Sender on an
// interface that is still there stops their interface watchers before it
// returns.
func TestInterfaceWatchStops(t *testing.T) {
	group := netip.MustParseAddrPort("239.192.7.3:7500")
	ifi := vethInterface(t, "watch0", "198.18.9.1", true)
	cfg := &mcast.Config{Interface: ifi}
	r, err := mcast.Listen(group, cfg)
	if err != nil {
		t.Fatal(err)
	}
	s, err := mcast.NewSender(group, cfg)
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	if n := watchers(); n != 2 {
		t.Errorf("%d interface watchers running; want 2", n)
	}
	r.Close()
	s.Close()
	// A watcher has closed its channel when Close returns, but its
	// goroutine may still be on its way out: allow it a moment.
	n := watchers()
	for deadline := time.Now().Add(time.Second); n != 0 && time.Now().Before(deadline); n = watchers() {
		time.Sleep(time.Millisecond)
	}
	if n != 0 {
		t.Errorf("%d interface watchers left after Close", n)
	}
}

// watchers counts the goroutines of mcast's interface watcher.
func watchers() int {
	var b strings.Builder
	pprof.Lookup("goroutine").WriteTo(&b, 2)
	return strings.Count(b.String(), "mcast.watchInterface.func")
}
