package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestEndToEnd builds mcsend and mcrecv and runs them against each other
// over real sockets. It opens sockets, so it runs only inside the private
// network namespace of scripts/netns (RELMCAST_NETNS=1):
//
//	scripts/netns go test ./cmd/...
func TestEndToEnd(t *testing.T) {
	if os.Getenv("RELMCAST_NETNS") != "1" {
		t.Skip("opens sockets: run inside scripts/netns (RELMCAST_NETNS=1)")
	}
	b := buildBins(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	t.Run("verify-loss", func(t *testing.T) {
		g := randGroup("239.192.0.1:%d")
		r := b.pair(t, []string{"--iface", "lo", "--group", g, "--count", "20000", "--verify", "--loss", "0.05", "--timeout", "60s"},
			[]string{"--iface", "lo", "--group", g, "--count", "20000", "--size", "1000", "--rate", "100M"}, "")
		r.wantExit(t, 0, 0)
		for _, want := range []string{"20000 messages, 20000000 bytes", "verify ok: 20000 in order", "0 loss events", "1 sources"} {
			if !strings.Contains(r.recvErr, want) {
				t.Errorf("mcrecv stderr lacks %q", want)
			}
		}
		if !strings.Contains(r.sendErr, "20000 messages, 20000000 bytes") {
			t.Errorf("mcsend stderr lacks the 20000 messages")
		}
		if strings.Contains(r.recvErr, " 0 repairs received") {
			t.Errorf("5%% loss but no repairs")
		}
		t.Logf("%s", summaryLines(r.recvErr))
		t.Logf("%s", summaryLines(r.sendErr))
	})

	// The same at the default rate (100 Mbit/s), about 2 seconds.
	t.Run("verify-loss-default-rate", func(t *testing.T) {
		g := randGroup("239.192.0.1:%d")
		r := b.pair(t, []string{"--iface", "lo", "--group", g, "--count", "20000", "--verify", "--loss", "0.05", "--timeout", "60s", "--quiet"},
			[]string{"--iface", "lo", "--group", g, "--count", "20000", "--size", "1000"}, "")
		r.wantExit(t, 0, 0)
		if !strings.Contains(r.recvErr, "20000 messages, 20000000 bytes") || !strings.Contains(r.recvErr, "verify ok") {
			t.Errorf("mcrecv stderr lacks 20000 messages, verify ok")
		}
		t.Logf("%s", summaryLines(r.recvErr))
		t.Logf("%s", summaryLines(r.sendErr))
	})

	t.Run("stdin-lines", func(t *testing.T) {
		g := randGroup("239.192.0.1:%d")
		in := "alpha\nbeta gamma\n\ndelta\nepsilon\n"
		r := b.pair(t, []string{"--iface", "lo", "--group", g, "--count", "5", "--timeout", "30s"},
			[]string{"--iface", "lo", "--group", g, "--linger", "200ms"}, in)
		r.wantExit(t, 0, 0)
		if r.recvOut != in {
			t.Errorf("mcrecv stdout %q; want %q", r.recvOut, in)
		}
		if !strings.Contains(r.recvErr, "5 messages, 27 bytes") || !strings.Contains(r.sendErr, "5 messages, 27 bytes") {
			t.Errorf("summaries do not say 5 messages, 27 bytes")
		}
	})

	t.Run("json", func(t *testing.T) {
		g := randGroup("239.192.0.1:%d")
		in := "{\"a\": 1}\nplain \"quoted\" text\n"
		r := b.pair(t, []string{"--iface", "lo", "--group", g, "--json", "--count", "2", "--timeout", "30s"},
			[]string{"--iface", "lo", "--group", g, "--linger", "200ms"}, in)
		r.wantExit(t, 0, 0)
		var types, data []string
		sc := bufio.NewScanner(strings.NewReader(r.recvOut))
		for sc.Scan() {
			var m struct {
				Type, Source, Addr, Data string
				Seq, Len                 *int
			}
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatalf("line %q: %v", sc.Text(), err)
			}
			types = append(types, m.Type)
			if m.Source == "" || m.Addr != "127.0.0.1" {
				t.Errorf("line %q: source %q addr %q", sc.Text(), m.Source, m.Addr)
			}
			if m.Type == "data" {
				if m.Seq == nil || m.Len == nil || *m.Len != len(m.Data) {
					t.Errorf("line %q: seq or len", sc.Text())
				}
				data = append(data, m.Data)
			}
		}
		if got := strings.Join(types, " "); got != "source-new data data" {
			t.Errorf("types %q", got)
		}
		if got := strings.Join(data, "\n") + "\n"; got != in {
			t.Errorf("data %q; want %q", got, in)
		}
	})

	t.Run("ipv6-zone", func(t *testing.T) {
		// IPv6 multicast is not looped on lo: the namespace has veth v0.
		g := randGroup("[ff02::1:3%%v0]:%d")
		r := b.pair(t, []string{"--group", g, "--count", "3", "--timeout", "30s"},
			[]string{"--group", g, "--linger", "200ms"}, "one\ntwo\nthree\n")
		r.wantExit(t, 0, 0)
		if r.recvOut != "one\ntwo\nthree\n" {
			t.Errorf("mcrecv stdout %q", r.recvOut)
		}
	})

	t.Run("count-not-reached", func(t *testing.T) {
		g := randGroup("239.192.0.1:%d")
		r := b.pair(t, []string{"--iface", "lo", "--group", g, "--count", "10", "--idle", "500ms", "--timeout", "30s", "--quiet"},
			[]string{"--iface", "lo", "--group", g, "--linger", "0"}, "1\n2\n3\n")
		r.wantExit(t, 3, 0)
		if !strings.Contains(r.recvErr, "--idle reached after 3 of 10 messages") {
			t.Errorf("mcrecv stderr lacks the reason")
		}
	})

	t.Run("bad-usage", func(t *testing.T) {
		for _, c := range []struct{ bin, arg string }{{b.send, "--rate=1x"}, {b.recv, "--idle=5"}} {
			cmd := exec.CommandContext(ctx, c.bin, c.arg)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			if code := cmd.ProcessState.ExitCode(); code != 2 {
				t.Errorf("%s %s: exit %d (%v); want 2; stderr %s", filepath.Base(c.bin), c.arg, code, err, stderr.String())
			}
		}
	})
}

type bins struct{ send, recv string }

type result struct {
	recvCode, sendCode        int
	recvOut, recvErr, sendErr string
	recvArgs, sendArgs        []string
}

func (r *result) wantExit(t *testing.T, recv, send int) {
	t.Helper()
	if r.recvCode != recv || r.sendCode != send {
		t.Fatalf("exit codes mcrecv %d, mcsend %d; want %d, %d\nmcrecv %q stderr:\n%s\nmcsend %q stderr:\n%s",
			r.recvCode, r.sendCode, recv, send, r.recvArgs, r.recvErr, r.sendArgs, r.sendErr)
	}
}

// pair starts mcrecv, waits until it listens, runs mcsend with stdin in,
// and waits for both, at most 90 seconds in all.
func (b bins) pair(t *testing.T, recvArgs, sendArgs []string, in string) *result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	r := &result{recvArgs: recvArgs, sendArgs: sendArgs}
	var rout, rerr, serr syncBuffer
	recv := exec.CommandContext(ctx, b.recv, recvArgs...)
	recv.Stdout, recv.Stderr = &rout, &rerr
	recv.WaitDelay = 5 * time.Second
	if err := recv.Start(); err != nil {
		t.Fatal(err)
	}
	recvDone := make(chan struct{})
	go func() {
		recv.Wait()
		close(recvDone)
	}()
	if !rerr.waitFor("listening on", 10*time.Second) {
		recv.Process.Kill()
		<-recvDone
		t.Fatalf("mcrecv %q did not say 'listening on' in 10s; stderr:\n%s", recvArgs, rerr.String())
	}
	send := exec.CommandContext(ctx, b.send, sendArgs...)
	send.Stdin = strings.NewReader(in)
	send.Stderr = &serr
	send.WaitDelay = 5 * time.Second
	send.Run()
	<-recvDone
	r.sendCode, r.sendErr = send.ProcessState.ExitCode(), serr.String()
	r.recvCode, r.recvOut, r.recvErr = recv.ProcessState.ExitCode(), rout.String(), rerr.String()
	if ctx.Err() != nil {
		t.Fatalf("killed after 90s; mcrecv stderr:\n%s\nmcsend stderr:\n%s", r.recvErr, r.sendErr)
	}
	return r
}

// randGroup fills a random port into format.
func randGroup(format string) string { return fmt.Sprintf(format, 20000+rand.IntN(40000)) }

// summaryLines returns the summary and verify lines of a command's stderr.
func summaryLines(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, " messages, ") || strings.Contains(l, ": verify ") || strings.Contains(l, "dropped") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// buildBins builds mcsend and mcrecv into a temporary directory.
func buildBins(t *testing.T) bins {
	dir := t.TempDir()
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, gobin, "build", "-o", dir+string(filepath.Separator),
		"github.com/relmcast/relmcast/cmd/mcsend", "github.com/relmcast/relmcast/cmd/mcrecv")
	build.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=-mod=mod")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bins{send: filepath.Join(dir, "mcsend"), recv: filepath.Join(dir, "mcrecv")}
}
