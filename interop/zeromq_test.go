package interop

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// buildZMQPeer compiles peers/zmqpeer.c against libzmq.
func buildZMQPeer(t *testing.T) string {
	t.Helper()
	return buildPeer(t, "zmqpeer", "libzmq", "libzmq3-dev")
}

// zmqMessage is zmqpeer's message i, as its frames (peers/zmqpeer.c).
func zmqMessage(i int) []string {
	letters := func(prefix string, n int) string {
		b := []byte(prefix)
		for j := range n {
			b = append(b, byte('a'+(i+j)%26))
		}
		return string(b)
	}
	switch {
	case i%5 == 0:
		return []string{fmt.Sprintf("topic-%d", i), letters(fmt.Sprintf("body-%d-", i), i*13%200)}
	case i%7 == 3:
		p := fmt.Sprintf("big-%d-", i)
		return []string{letters(p, 3000-len(p))}
	}
	return []string{letters(fmt.Sprintf("msg-%d-", i), i*13%200)}
}

// summaryNumber extracts the number before label in a summary line.
func summaryNumber(t *testing.T, text, label string) uint64 {
	t.Helper()
	m := regexp.MustCompile(`(\d+) ` + regexp.QuoteMeta(label)).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no %q in:\n%s", label, text)
	}
	n, _ := strconv.ParseUint(m[1], 10, 64)
	return n
}

// TestZeroMQPubToMcrecv: a ZeroMQ PUB (epgm) publishes single-frame,
// two-frame (topic, body) and 3000-byte messages, which ZeroMQ packs into
// PGM packets and spreads across several; mcrecv --zmq drops 5% of what
// it reads, NAKs, gets OpenPGM's repairs inside ZeroMQ, and prints every
// message, frames joined by a space, in order.
func TestZeroMQPubToMcrecv(t *testing.T) {
	tp := setup(t)
	bin := buildZMQPeer(t)
	_, mcrecv := buildCmds(t)
	const (
		port  = 7614
		count = 2000
	)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rx := start(t, "mcrecv", exec.CommandContext(ctx, mcrecv, "--zmq", "--iface", tp.ifi.Name, "--group", fmt.Sprintf("%v:%d", group, port),
		"--count", fmt.Sprint(count), "--loss", "loss=0.05,seed=3", "--expiry", "2m", "--timeout", "90s"), nil)
	rx.waitStderr(t, "listening on", 10*time.Second)
	pub := start(t, "zmqpeer pub", tp.inPeer(ctx, bin, "pub", "-e", tp.endpoint(port), "-n", fmt.Sprint(count), "-l", "3000", "-t", "60000"), nil)
	var got []string
	for l := range rx.lines {
		got = append(got, l)
	}
	if err := rx.wait(10 * time.Second); err != nil {
		t.Fatalf("mcrecv: %v\n%s", err, rx.stderr.String())
	}
	want := make([]string, count)
	for i := range want {
		want[i] = strings.Join(zmqMessage(i), " ")
	}
	if err := errLine(got, want); err != nil {
		t.Fatalf("mcrecv --zmq printed other messages than ZeroMQ published: %v", err)
	}
	if err := pub.wait(30 * time.Second); err != nil {
		t.Fatalf("zmqpeer pub: %v", err)
	}
	errs := rx.stderr.String()
	naks, repairs := summaryNumber(t, errs, "NAKs sent"), summaryNumber(t, errs, "repairs received")
	apdus := summaryNumber(t, errs, "PGM messages decoded")
	t.Logf("mcrecv --zmq printed all %d ZeroMQ messages in order, decoded from %d PGM messages; %d NAKs sent, %d repairs received",
		count, apdus, naks, repairs)
	if naks == 0 || repairs == 0 || summaryNumber(t, errs, "loss events") != 0 {
		t.Errorf("want loss repaired, none lost:\n%s", errs)
	}
}

// TestMcsendToZeroMQSub: mcsend --zmq publishes stdin lines (some longer
// than a packet, one empty) to a ZeroMQ SUB (epgm) while the peer
// namespace drops every 20th data packet (ODATA, RDATA) that comes in;
// the SUB's NAKs are
// answered with our NCF and RDATA and it gets every line, in order.
func TestMcsendToZeroMQSub(t *testing.T) {
	tp := setup(t)
	bin := buildZMQPeer(t)
	mcsend, _ := buildCmds(t)
	const (
		port  = 7615
		count = 2000
	)
	drops := tp.dropIntoPeer(t, port, 20)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sub := start(t, "zmqpeer sub", tp.inPeer(ctx, bin, "sub", "-e", tp.endpoint(port), "-n", fmt.Sprint(count), "-t", "90000"), nil)
	sub.expect(t, "ready", 10*time.Second)
	want := make([]string, count)
	for i := range want {
		want[i] = fmt.Sprintf("line-%d %s", i, strings.Repeat(string(rune('a'+i%26)), i*37%4000))
	}
	want[7] = ""
	tx := start(t, "mcsend", exec.CommandContext(ctx, mcsend, "--zmq", "--iface", tp.ifi.Name, "--group", fmt.Sprintf("%v:%d", group, port), "--linger", "3s"),
		[]byte(strings.Join(want, "\n")+"\n"))
	var got []string
	for len(got) < count {
		l, ok := sub.next(60 * time.Second)
		if !ok {
			t.Fatalf("the ZeroMQ SUB printed %d of %d lines (the last %.80q) and then nothing for 60s or ended (%v); mcsend:\n%s",
				len(got), count, got[max(len(got)-1, 0):], sub.wait(time.Second), tx.stderr.String())
		}
		got = append(got, l)
	}
	if err := errLine(got, want); err != nil {
		t.Fatalf("the ZeroMQ SUB received other messages than mcsend --zmq sent: %v", err)
	}
	sub.expect(t, fmt.Sprintf("done %d", count), 10*time.Second)
	if err := tx.wait(30 * time.Second); err != nil {
		t.Fatalf("mcsend: %v", err)
	}
	errs := tx.stderr.String()
	rdata, naks := summaryNumber(t, errs, "repairs sent"), summaryNumber(t, errs, "NAKs received")
	apdus := summaryNumber(t, errs, "PGM messages")
	t.Logf("the ZeroMQ SUB got all %d lines in order, from %d PGM messages; %d packets dropped into it; mcsend: %d NAKs received, %d repairs sent",
		count, apdus, drops(), naks, rdata)
	if drops() == 0 || naks == 0 || rdata == 0 {
		t.Errorf("want loss answered by NAK and RDATA: drops %d:\n%s", drops(), errs)
	}
}
