//go:build linux

package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestOperations runs the operator's side of mcsend and mcrecv as real
// processes over real sockets: a file sent to three receivers under loss,
// a file that cannot be repaired, SIGINT and a second signal, and the
// status line on a terminal (a pty) and not on a pipe. It runs only
// inside scripts/netns (RELMCAST_NETNS=1):
//
//	scripts/netns go test -run TestOperations ./cmd/mcrecv
func TestOperations(t *testing.T) {
	if os.Getenv("RELMCAST_NETNS") != "1" {
		t.Skip("opens sockets: run inside scripts/netns (RELMCAST_NETNS=1)")
	}
	b := buildBins(t)
	src := t.TempDir()
	content := make([]byte, 8<<20)
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range content {
		content[i] = byte(rng.Uint32())
	}
	file := filepath.Join(src, "payload.bin")
	if err := os.WriteFile(file, content, 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("file-three-receivers", func(t *testing.T) {
		g := randGroup("239.192.0.1:%d")
		var recvs []*proc
		var dirs []string
		for i := range 3 {
			dir := t.TempDir()
			dirs = append(dirs, dir)
			recvs = append(recvs, start(t, b.recv, "--iface", "lo", "--group", g, "--out", dir, "--files", "1",
				"--loss", fmt.Sprintf("loss=0.03,seed=%d", i+1), "--timeout", "60s"))
		}
		for _, r := range recvs {
			r.waitStderr(t, "listening on", 10*time.Second)
		}
		send := start(t, b.send, "--iface", "lo", "--group", g, "--file", file, "--rate", "200M", "--linger", "3s")
		for i, r := range recvs {
			if code := r.wait(t, 60*time.Second); code != 0 {
				t.Errorf("mcrecv %d: exit %d; stderr:\n%s", i, code, r.stderr.String())
			}
			got, err := os.ReadFile(filepath.Join(dirs[i], "payload.bin"))
			if err != nil || !bytes.Equal(got, content) {
				t.Errorf("receiver %d: %d bytes, %v; want the %d bytes exactly", i, len(got), err, len(content))
			}
			if es, _ := os.ReadDir(dirs[i]); len(es) != 1 {
				t.Errorf("receiver %d: directory %v", i, es)
			}
			for _, want := range []string{"sha256 ok", "files: 1 written, 0 failed", "0 loss events"} {
				if !strings.Contains(r.stderr.String(), want) {
					t.Errorf("mcrecv %d stderr lacks %q:\n%s", i, want, r.stderr.String())
				}
			}
			t.Logf("mcrecv %d:\n%s", i, summaryLines(r.stderr.String()))
		}
		if code := send.wait(t, 30*time.Second); code != 0 || !strings.Contains(send.stderr.String(), "files: 1 of 1 sent, 8388608 of 8388608 bytes") {
			t.Errorf("mcsend: exit %d; stderr:\n%s", code, send.stderr.String())
		}
		t.Logf("mcsend:\n%s", send.stderr.String())
	})

	// Two sources send a file each at the same time to one receiver.
	t.Run("two-sources", func(t *testing.T) {
		other := filepath.Join(src, "other.bin")
		if err := os.WriteFile(other, content[:3<<20], 0o644); err != nil {
			t.Fatal(err)
		}
		g := randGroup("239.192.0.1:%d")
		dir := t.TempDir()
		recv := start(t, b.recv, "--iface", "lo", "--group", g, "--out", dir, "--files", "2", "--loss", "0.02", "--timeout", "60s")
		recv.waitStderr(t, "listening on", 10*time.Second)
		s1 := start(t, b.send, "--iface", "lo", "--group", g, "--file", file, "--rate", "100M")
		// A second source on this host needs an address of its own.
		s2 := start(t, b.send, "--iface", "lo", "--group", g, "--addr", "127.0.0.2", "--file", other, "--rate", "50M")
		if code := recv.wait(t, 60*time.Second); code != 0 {
			t.Errorf("mcrecv: exit %d; stderr:\n%s", code, recv.stderr.String())
		}
		for name, want := range map[string][]byte{"payload.bin": content, "other.bin": content[:3<<20]} {
			if got, err := os.ReadFile(filepath.Join(dir, name)); err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s: %d bytes, %v", name, len(got), err)
			}
		}
		if !strings.Contains(recv.stderr.String(), "files: 2 written, 0 failed") || !strings.Contains(recv.stderr.String(), "2 sources") {
			t.Errorf("mcrecv stderr:\n%s", recv.stderr.String())
		}
		for i, s := range []*proc{s1, s2} {
			if code := s.wait(t, 30*time.Second); code != 0 {
				t.Errorf("mcsend %d: exit %d; stderr:\n%s", i+1, code, s.stderr.String())
			}
		}
	})

	// The source ignores every NAK (mcsend --loss 1 drops all it
	// receives): the receiver's holes cannot be repaired, so the file
	// fails and nothing is written.
	t.Run("file-unrecoverable", func(t *testing.T) {
		g := randGroup("239.192.0.1:%d")
		dir := t.TempDir()
		recv := start(t, b.recv, "--iface", "lo", "--group", g, "--out", dir, "--files", "1", "--loss", "loss=0.02,seed=9", "--timeout", "60s")
		recv.waitStderr(t, "listening on", 10*time.Second)
		send := start(t, b.send, "--iface", "lo", "--group", g, "--file", file, "--rate", "200M", "--linger", "5s", "--loss", "1")
		if code := recv.wait(t, 60*time.Second); code != 3 {
			t.Errorf("mcrecv: exit %d; want 3; stderr:\n%s", code, recv.stderr.String())
		}
		for _, want := range []string{`file "payload.bin" from `, "FAILED after", "nothing written", "files: 0 written, 1 failed"} {
			if !strings.Contains(recv.stderr.String(), want) {
				t.Errorf("mcrecv stderr lacks %q:\n%s", want, recv.stderr.String())
			}
		}
		if es, _ := os.ReadDir(dir); len(es) != 0 {
			t.Errorf("directory not empty: %v", es)
		}
		send.signal(t, os.Interrupt) // no need to linger
		send.wait(t, 10*time.Second)
	})

	// SIGINT to mcsend: it stops, sends FIN and lingers, then prints its
	// summary; the receiver sees the source gone with "fin". SIGINT to
	// mcrecv: it prints its summary and exits.
	t.Run("sigint", func(t *testing.T) {
		g := randGroup("239.192.0.1:%d")
		recv := start(t, b.recv, "--iface", "lo", "--group", g, "--quiet", "--timeout", "60s")
		recv.waitStderr(t, "listening on", 10*time.Second)
		const linger = time.Second
		send := start(t, b.send, "--iface", "lo", "--group", g, "--count", "1000000000", "--size", "500", "--rate", "20M", "--linger", linger.String())
		recv.waitStderr(t, "source new", 10*time.Second)
		time.Sleep(300 * time.Millisecond) // some data flows
		sent := time.Now()
		send.signal(t, os.Interrupt)
		code := send.wait(t, 10*time.Second)
		took := time.Since(sent)
		if code != 1 || took > linger+3*time.Second {
			t.Errorf("mcsend: exit %d after %v; want 1 within the linger (%v) and a margin", code, took, linger)
		}
		for _, want := range []string{"interrupted: closing", " messages, ", "interrupted after "} {
			if !strings.Contains(send.stderr.String(), want) {
				t.Errorf("mcsend stderr lacks %q:\n%s", want, send.stderr.String())
			}
		}
		recv.waitStderr(t, ": fin\n", 10*time.Second)
		recv.signal(t, syscall.SIGTERM)
		if code := recv.wait(t, 10*time.Second); code != 0 {
			t.Errorf("mcrecv: exit %d; stderr:\n%s", code, recv.stderr.String())
		}
		for _, want := range []string{" messages, ", "0 loss events", "1 sources", "mcrecv: interrupted"} {
			if !strings.Contains(recv.stderr.String(), want) {
				t.Errorf("mcrecv stderr lacks %q:\n%s", want, recv.stderr.String())
			}
		}
		t.Logf("mcsend:\n%s\nmcrecv:\n%s", send.stderr.String(), recv.stderr.String())
	})

	// A second signal while mcsend lingers exits at once, with 130.
	t.Run("second-signal", func(t *testing.T) {
		g := randGroup("239.192.0.1:%d")
		send := startIn(t, strings.NewReader("one\ntwo\n"), b.send, "--iface", "lo", "--group", g, "--linger", "60s")
		time.Sleep(300 * time.Millisecond) // stdin read; lingering
		send.signal(t, os.Interrupt)
		send.waitStderr(t, "interrupted: closing", 5*time.Second)
		at := time.Now()
		send.signal(t, os.Interrupt)
		if code := send.wait(t, 5*time.Second); code != exitSignal || time.Since(at) > 2*time.Second {
			t.Errorf("exit %d after %v; want %d at once; stderr:\n%s", code, time.Since(at), exitSignal, send.stderr.String())
		}
	})

	// On a terminal the status line is redrawn in place every second;
	// on a pipe there is none.
	t.Run("status-line", func(t *testing.T) {
		g := randGroup("239.192.0.1:%d")
		ptyOut, tty := openPTY(t, 200)
		recv := startTTY(t, tty, b.recv, "--iface", "lo", "--group", g, "--quiet", "--idle", "1s", "--timeout", "30s")
		piped := start(t, b.recv, "--iface", "lo", "--group", g, "--quiet", "--idle", "1s", "--timeout", "30s")
		ptyOut.waitFor("listening on", 10*time.Second)
		piped.waitStderr(t, "listening on", 10*time.Second)
		sendOut, sendTTY := openPTY(t, 200)
		send := startTTY(t, sendTTY, b.send, "--iface", "lo", "--group", g, "--file", file, "--rate", "20M", "--linger", "200ms")
		send.wait(t, 30*time.Second)
		recv.wait(t, 30*time.Second)
		piped.wait(t, 30*time.Second)
		// The pty's reader may still be copying what they wrote last.
		ptyOut.waitFor("messages, ", 5*time.Second)
		sendOut.waitFor("files: 1 of 1 sent", 5*time.Second)
		out := ptyOut.String()
		if n := strings.Count(out, "\r\x1b[Kmcrecv: "); n < 2 || !strings.Contains(out, " msgs/s ") || !strings.Contains(out, " repairs") || !strings.Contains(out, " lost | 1 sources") {
			t.Errorf("mcrecv on a pty: %d status redraws; output:\n%q", n, out)
		}
		if !strings.Contains(out, "messages, ") {
			t.Errorf("mcrecv on a pty: no summary:\n%q", out)
		}
		if p := piped.stderr.String(); strings.ContainsAny(p, "\r\x1b") || !strings.Contains(p, "messages, ") {
			t.Errorf("mcrecv on a pipe:\n%q", p)
		}
		so := sendOut.String()
		if n := strings.Count(so, "\r\x1b[Kmcsend: ["); n < 2 || !strings.Contains(so, "% ") || !strings.Contains(so, "ETA ") || !strings.Contains(so, "files: 1 of 1 sent") {
			t.Errorf("mcsend --file on a pty: %d progress redraws; output:\n%q", n, so)
		}
		t.Logf("mcsend on a pty:\n%q\nmcrecv on a pty:\n%q", so, out)
	})
}

// proc is a command started by a test, killed at the test's end if it is
// still running.
type proc struct {
	cmd    *exec.Cmd
	stderr syncBuffer
	done   chan struct{}
}

func start(t *testing.T, bin string, args ...string) *proc { return startIn(t, nil, bin, args...) }

func startIn(t *testing.T, stdin io.Reader, bin string, args ...string) *proc {
	p := &proc{cmd: exec.Command(bin, args...), done: make(chan struct{})}
	p.cmd.Stdin = stdin
	p.cmd.Stderr = &p.stderr
	return p.run(t)
}

// startTTY starts bin with stderr on tty, and closes the test's copy of
// tty once started.
func startTTY(t *testing.T, tty *os.File, bin string, args ...string) *proc {
	p := &proc{cmd: exec.Command(bin, args...), done: make(chan struct{})}
	p.cmd.Stderr = tty
	p = p.run(t)
	tty.Close()
	return p
}

func (p *proc) run(t *testing.T) *proc {
	t.Helper()
	p.cmd.WaitDelay = 5 * time.Second
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *proc) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatal(err)
	}
}

// wait waits at most d for the process to exit and returns its status;
// past d it kills it and fails the test.
func (p *proc) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("%s did not exit in %v; stderr:\n%s", filepath.Base(p.cmd.Path), d, p.stderr.String())
		return -1
	}
}

func (p *proc) waitStderr(t *testing.T, want string, d time.Duration) {
	t.Helper()
	if !p.stderr.waitFor(want, d) {
		t.Fatalf("%s: no %q on stderr in %v:\n%s", filepath.Base(p.cmd.Path), want, d, p.stderr.String())
	}
}

// openPTY opens a pseudo-terminal of cols columns and returns what is
// written to it (read from its master side until every writer closed it)
// and its terminal side for a process's stderr.
func openPTY(t *testing.T, cols uint16) (*syncBuffer, *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	fd := int(m.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Skipf("no pseudo-terminal: %v", err)
	}
	if err := unix.IoctlSetWinsize(int(tty.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: cols}); err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	done := make(chan struct{})
	go func() {
		io.Copy(out, m) // ends with EIO once no process holds the terminal side
		close(done)
	}()
	t.Cleanup(func() {
		tty.Close()
		m.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("pty reader did not end")
		}
	})
	return out, tty
}
