package interop

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// topo is the two-namespace topology of scripts/interop.
type topo struct {
	peerPID   string         // a process in the peer namespace (nsenter -t)
	ifi       *net.Interface // our end of the veth pair
	addr      netip.Addr     // our address on it
	peerAddr  netip.Addr     // the peer's address
	peerIface string
}

// group is the multicast group of every test (OpenPGM's and ZeroMQ's
// default); each test has its own port.
var group = netip.MustParseAddr("239.192.0.1")

// setup returns the topology, or skips the test loudly outside it.
func setup(t *testing.T) *topo {
	t.Helper()
	pid := os.Getenv("RELMCAST_INTEROP_PEER_PID")
	if pid == "" || os.Getenv("RELMCAST_NETNS") != "1" {
		t.Skip("INTEROP TEST SKIPPED: it runs only inside the two network namespaces of scripts/interop " +
			"(RELMCAST_INTEROP_PEER_PID unset); run scripts/interop")
	}
	ifi, err := net.InterfaceByName(os.Getenv("RELMCAST_INTEROP_IFACE"))
	if err != nil {
		t.Fatalf("our veth end: %v", err)
	}
	tp := &topo{
		peerPID:   pid,
		ifi:       ifi,
		addr:      netip.MustParseAddr(os.Getenv("RELMCAST_INTEROP_ADDR")),
		peerAddr:  netip.MustParseAddr(os.Getenv("RELMCAST_INTEROP_PEER_ADDR")),
		peerIface: os.Getenv("RELMCAST_INTEROP_PEER_IFACE"),
	}
	// Safety: these addresses must be the test range, on a veth pair.
	bench := netip.MustParsePrefix("198.18.0.0/24")
	if !bench.Contains(tp.addr) || !bench.Contains(tp.peerAddr) {
		t.Fatalf("interop addresses %v, %v are outside 198.18.0.0/24", tp.addr, tp.peerAddr)
	}
	return tp
}

// endpoint is the epgm endpoint of the peer for port p.
func (tp *topo) endpoint(p uint16) string {
	return fmt.Sprintf("epgm://%v;%v:%d", tp.peerAddr, group, p)
}

// inPeer returns a command that runs in the peer namespace.
func (tp *topo) inPeer(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "nsenter", append([]string{"-t", tp.peerPID, "-n", "--", name}, args...)...)
}

// need fails the test loudly when a tool is missing.
func need(t *testing.T, tool, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		t.Fatalf("INTEROP PEER MISSING: %s not found (%v): install the Debian package %s (.ci/run does)", tool, err, pkg)
	}
	return p
}

// buildPeer compiles peers/NAME.c against the pkg-config package pc into
// t.TempDir and returns the binary. A missing package fails the test.
func buildPeer(t *testing.T, name, pc, debPkg string) string {
	t.Helper()
	cc := need(t, "cc", "gcc")
	need(t, "pkg-config", "pkg-config")
	flags, err := exec.Command("pkg-config", "--cflags", "--libs", pc).CombinedOutput()
	if err != nil {
		t.Fatalf("INTEROP PEER MISSING: pkg-config %s: %v: %s; install the Debian package %s (.ci/run does)",
			pc, err, bytes.TrimSpace(flags), debPkg)
	}
	bin := filepath.Join(t.TempDir(), name)
	args := append([]string{"-O2", "-Wall", "-o", bin, filepath.Join("peers", name+".c")}, strings.Fields(string(flags))...)
	if out, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
		t.Fatalf("compiling %s: %v\n%s", name, err, out)
	}
	return bin
}

// buildCmds builds mcsend and mcrecv into t.TempDir.
func buildCmds(t *testing.T) (mcsend, mcrecv string) {
	t.Helper()
	dir := t.TempDir()
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	cmd := exec.Command(gobin, "build", "-o", dir+string(filepath.Separator),
		"github.com/relmcast/relmcast/cmd/mcsend", "github.com/relmcast/relmcast/cmd/mcrecv")
	cmd.Env = append(os.Environ(), "GOPROXY=off") // no route to the proxy in here
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return filepath.Join(dir, "mcsend"), filepath.Join(dir, "mcrecv")
}

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// proc is a process started by a test: its stdout comes line by line,
// its stderr is kept for the log.
type proc struct {
	name   string
	cmd    *exec.Cmd
	lines  chan string // stdout, closed at EOF
	stderr lockedBuffer
	done   chan struct{}
	err    error // Wait's result, after done
}

// start starts cmd with stdin (may be nil); the test's cleanup kills it
// if it is still running and logs its stderr.
func start(t *testing.T, name string, cmd *exec.Cmd, stdin []byte) *proc {
	t.Helper()
	p := &proc{name: name, cmd: cmd, lines: make(chan string, 1<<16), done: make(chan struct{})}
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	cmd.Stderr = &p.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<16), 1<<20)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill() // the process this test started, by its pid
			<-p.done
		}
		if s := p.stderr.String(); s != "" {
			t.Logf("%s stderr:\n%s", name, strings.TrimRight(s, "\n"))
		}
	})
	return p
}

// next returns the next stdout line; false after d or at EOF.
func (p *proc) next(d time.Duration) (string, bool) {
	select {
	case l, ok := <-p.lines:
		return l, ok
	case <-time.After(d):
		return "", false
	}
}

// line returns the next stdout line, failing the test after d or at EOF.
func (p *proc) line(t *testing.T, d time.Duration) string {
	t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			t.Fatalf("%s exited early (%v); stderr:\n%s", p.name, p.wait(time.Second), p.stderr.String())
		}
		return l
	case <-time.After(d):
		t.Fatalf("%s: no output line in %v; stderr:\n%s", p.name, d, p.stderr.String())
	}
	return ""
}

// expect reads the next line and fails unless it is want.
func (p *proc) expect(t *testing.T, want string, d time.Duration) {
	t.Helper()
	if got := p.line(t, d); got != want {
		t.Fatalf("%s: got %q, want %q", p.name, got, want)
	}
}

// wait waits at most d for the process to exit and returns its error.
func (p *proc) wait(d time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		return fmt.Errorf("%s still running after %v", p.name, d)
	}
}

// waitStderr waits at most d until the process's stderr contains s.
func (p *proc) waitStderr(t *testing.T, s string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(p.stderr.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %q on stderr in %v:\n%s", p.name, s, d, p.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// dropIntoPeer makes the peer namespace drop every nth ODATA or RDATA
// packet that arrives for port p (iptables u32 and statistic, in the peer
// namespace only), until the test ends. It returns a function that counts
// the drops.
//
// SPMs and NCFs are spared on purpose. An OpenPGM receiver cannot NAK
// before it has an SPM (the SPM carries the address NAKs go to), and
// declares every gap found before then lost at once, without a NAK
// (research/openpgm.md §4.2); and a ZeroMQ SUB receives nothing more, ever,
// after the first such loss (seen with libzmq 4.3.4). Our sender's three
// start SPMs usually leave in one UDP GSO send with the first data, which
// a veth pair carries as one packet, so dropping "every nth packet" would
// drop all of them together in one run out of twenty.
func (tp *topo) dropIntoPeer(t *testing.T, p uint16, nth int) func() uint64 {
	t.Helper()
	need(t, "iptables", "iptables")
	rule := []string{"INPUT", "-p", "udp", "--dport", strconv.Itoa(int(p)),
		// PGM type byte (UDP payload offset 4) 0x04..0x05: ODATA, RDATA.
		"-m", "u32", "--u32", "0>>22&0x3C@12>>24&0xFF=0x4:0x5",
		"-m", "statistic", "--mode", "nth", "--every", strconv.Itoa(nth), "--packet", "0", "-j", "DROP"}
	ipt := func(args ...string) ([]byte, error) {
		return tp.inPeer(context.Background(), "iptables", args...).CombinedOutput()
	}
	if out, err := ipt(append([]string{"-A"}, rule...)...); err != nil {
		t.Fatalf("iptables -A in the peer namespace: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := ipt(append([]string{"-D"}, rule...)...); err != nil {
			t.Errorf("iptables -D: %v\n%s", err, out)
		}
	})
	return func() uint64 {
		out, err := ipt("-L", "INPUT", "-v", "-n", "-x")
		if err != nil {
			t.Errorf("iptables -L: %v\n%s", err, out)
			return 0
		}
		for l := range strings.SplitSeq(string(out), "\n") {
			if f := strings.Fields(l); len(f) > 2 && f[2] == "DROP" && strings.Contains(l, "dpt:"+strconv.Itoa(int(p))+" ") {
				n, _ := strconv.ParseUint(f[0], 10, 64)
				return n
			}
		}
		return 0
	}
}

// fnv64 is FNV-1a 64, as the C peers print it.
func fnv64(b []byte) string {
	h := fnv.New64a()
	h.Write(b)
	return fmt.Sprintf("%016x", h.Sum64())
}

// errLine reports the first line where got and want differ.
func errLine(got, want []string) error {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Errorf("line %d: got %.120q, want %.120q", i+1, got[i], want[i])
		}
	}
	if len(got) != len(want) {
		return fmt.Errorf("got %d lines, want %d", len(got), len(want))
	}
	return nil
}
