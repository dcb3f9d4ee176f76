// Command harness runs the bench/ sweep: relmcast against the raw UDP
// ceiling (sendmmsg/recvmmsg, and with GSO/GRO) and OpenPGM, each sender
// and receiver a separate process, on loopback inside the private network
// namespace of scripts/netns. Run it through bench/run, which builds the
// peers and enters the namespace; see bench/README.md.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Implementations.
const (
	implRelm      = "relmcast"            // mcast API, GSO/GRO on (the default)
	implRelmNoOff = "relmcast-no-offload" // mcast API over sendmmsg/recvmmsg only
	implRaw       = "raw-mmsg"            // blaster/sink, sendmmsg/recvmmsg, no reliability
	implRawGSO    = "raw-gso-gro"         // the same with GSO and GRO
	implOpenPGM   = "openpgm"             // libpgm 5.3 through bench/openpgm/pgmbench
	implRelmBatch = "relmcast-batch"      // relmcast with small-message batching (Config.Batch)
	implRelmFEC   = "relmcast-fec"        // relmcast with Reed-Solomon parity (fecSpec)
)

var reliable = map[string]bool{implRelm: true, implRelmNoOff: true, implOpenPGM: true, implRelmBatch: true, implRelmFEC: true}

// fecSpec is relmcast-fec's FEC: groups of 16 packets, 2 pro-active
// parity packets after each, and parity on demand (benchpeer --fec). It
// runs under loss at fecSizes, where parity replaces most NAK rounds.
const fecSpec = "16:2"

var fecSizes = map[int]bool{1400: true}

// batchDelay is relmcast-batch's Config.Batch; batchSizes are the sizes it
// runs at (1 receiver), and batchGuesses its calibration's first rates.
const batchDelay = "1ms"

var (
	batchSizes   = map[int]bool{64: true, 512: true}
	batchGuesses = map[int]float64{64: 1000000, 512: 400000}
)

// Point is one run and its results.
type Point struct {
	Impl      string  `json:"impl"`
	Kind      string  `json:"kind"` // throughput, loss, latency, probe
	Size      int     `json:"size"`
	Loss      float64 `json:"loss"`
	Receivers int     `json:"receivers"`
	FEC       string  `json:"fec"`
	Rep       int     `json:"rep"`
	Rate      float64 `json:"offered_rate"` // msgs/s; 0: as fast as the sender goes
	// LossVia says how loss was injected: "lossy" (seeded, in the
	// receiver process, independent per receiver) or "iptables" (kernel
	// random drop of multicast at input: not seeded, the same packets for
	// every receiver on the host).
	LossVia string `json:"loss_via,omitempty"`

	Sent          uint64  `json:"sent"`
	Delivered     uint64  `json:"delivered"`      // mean over receivers, in order and checked
	MsgsPerSec    float64 `json:"msgs_per_s"`     // delivered, mean over receivers
	MBPerSec      float64 `json:"mb_per_s"`       // delivered payload, 10^6 bytes/s
	Completeness  float64 `json:"completeness"`   // worst receiver: delivered / sent
	Complete      bool    `json:"complete"`       // every receiver got every message, checked
	SenderCPU     float64 `json:"sender_cpu_s"`   // user+system
	ReceiverCPU   float64 `json:"receiver_cpu_s"` // mean per receiver
	SenderCPUGB   float64 `json:"sender_cpu_s_per_gb"`
	ReceiverCPUGB float64 `json:"receiver_cpu_s_per_gb"`
	RepairP50     float64 `json:"repair_p50_ms,omitempty"`
	RepairP99     float64 `json:"repair_p99_ms,omitempty"`
	LatP50        float64 `json:"lat_p50_us,omitempty"`
	LatP99        float64 `json:"lat_p99_us,omitempty"`
	LatP999       float64 `json:"lat_p999_us,omitempty"`
	NAKs          uint64  `json:"naks,omitempty"`
	RDATA         uint64  `json:"rdata,omitempty"`
	LossEvents    uint64  `json:"loss_events,omitempty"`
	LossReasons   string  `json:"loss_reasons,omitempty"`
	Wall          float64 `json:"wall_s"`
	Err           string  `json:"error,omitempty"`
	// ForeignCPU is the CPU time other processes on the machine used
	// during the run; Disturbed says it was more than a quarter core, and
	// Superseded that the run was done again (it is left out of the
	// tables).
	ForeignCPU float64 `json:"foreign_cpu_s"`
	Disturbed  bool    `json:"disturbed,omitempty"`
	Superseded bool    `json:"superseded,omitempty"`
}

type sendResult struct {
	Msgs    uint64 `json:"msgs"`
	Bytes   uint64 `json:"bytes"`
	StartNS int64  `json:"start_ns"`
	EndNS   int64  `json:"end_ns"`
	RDATA   uint64 `json:"rdata"`
	NAKs    uint64 `json:"naks"`
}

type summary struct {
	N    int   `json:"n"`
	P50  int64 `json:"p50"`
	P99  int64 `json:"p99"`
	P999 int64 `json:"p999"`
}

type recvResult struct {
	Msgs       uint64   `json:"msgs"`
	Bytes      uint64   `json:"bytes"`
	FirstNS    int64    `json:"first_ns"`
	LastNS     int64    `json:"last_ns"`
	OK         uint64   `json:"ok"`
	Bad        uint64   `json:"bad"`
	Missing    uint64   `json:"missing"`
	OutOfOrder uint64   `json:"out_of_order"`
	End        bool     `json:"end"`
	LossEvents uint64   `json:"loss_events"`
	NAKs       uint64   `json:"naks"`
	Latency    *summary `json:"latency"`
	Repair     *summary `json:"repair"`

	LossReasons map[string]uint64 `json:"loss_reasons"`
}

type harness struct {
	bin      string
	pgm      string // path of pgmbench; "" if not built
	duration time.Duration
	port     int
	points   []Point
	log      io.Writer
	seed     int
	pgmLoss  bool // --openpgm-loss and iptables is there
	// quietBudget is how long the sweep may still wait for other
	// processes to calm down before redoing a disturbed run.
	quietBudget time.Duration
}

func main() {
	var (
		smoke    = flag.Bool("smoke", false, "a few seconds: small sweep, assert completeness (not speed)")
		out      = flag.String("out", "", "directory for results.json, results.csv, results.md, plot.svg (default: none for --smoke, bench/results otherwise)")
		bin      = flag.String("bin", "", "directory with benchpeer and pgmbench")
		reps     = flag.Int("reps", 2, "repetitions of each throughput point, interleaved A B A B")
		duration = flag.Duration("duration", 1500*time.Millisecond, "sending time of a throughput run")
		readme   = flag.String("readme", "", "bench/README.md to update with the table (between the results markers)")
		pgmNote  = flag.String("openpgm-note", "", "why pgmbench is missing, if it is")
		from     = flag.String("from", "", "rewrite the tables and plot from this results.json (runs nothing)")
		quiet    = flag.Duration("quiet-budget", 150*time.Second, "how long the sweep may wait, in all, for other processes to calm down before redoing a run they disturbed")
		pgmLoss  = flag.Bool("openpgm-loss", false, "run OpenPGM under loss too (iptables drop; unreliable on one host: see bench/README.md)")
		only     = flag.String("point", "", "run only these points, `IMPL:SIZE:RCV[:LOSS],...` (e.g. relmcast:1400:1,raw-mmsg:1400:1): search each reliable one's rate, then --reps runs interleaved; writes nothing unless --out")
	)
	flag.Parse()
	if *from != "" {
		if err := rewrite(*from, orStr(*out, filepath.Dir(*from)), *readme); err != nil {
			fmt.Fprintf(os.Stderr, "harness: %v\n", err)
			os.Exit(1)
		}
		return
	}
	if os.Getenv("RELMCAST_NETNS") != "1" {
		fmt.Fprintln(os.Stderr, "harness: run inside scripts/netns (bench/run does): no packet may leave this machine")
		os.Exit(2)
	}
	h := &harness{bin: *bin, duration: *duration, port: 7600, log: os.Stderr, quietBudget: *quiet}
	if _, err := os.Stat(filepath.Join(h.bin, "benchpeer")); err != nil {
		fmt.Fprintf(os.Stderr, "harness: %v (give --bin)\n", err)
		os.Exit(2)
	}
	if p := filepath.Join(h.bin, "pgmbench"); fileExists(p) {
		h.pgm = p
	}
	if *pgmLoss {
		if _, err := exec.LookPath("iptables"); err == nil {
			h.pgmLoss = true
		} else {
			fmt.Fprintln(h.log, "harness: no iptables: OpenPGM is not run under loss (apt-get install iptables)")
		}
	}
	m := describeMachine()
	if h.pgm == "" {
		m.OpenPGM = "skipped: " + orStr(*pgmNote, "pgmbench not built")
	}
	start := time.Now()
	var err error
	if *smoke {
		h.quietBudget = 0 // completeness, not speed: never wait
		err = h.smoke()
	} else if *only != "" {
		err = h.only(*only, *reps)
	} else {
		h.full(*reps)
	}
	m.LoadEnd = loadavg()
	m.Duration = time.Since(start).Round(time.Second).String()
	disturbed, redone := 0, 0
	for _, p := range h.points {
		if p.Superseded {
			redone++
		} else if p.Disturbed {
			disturbed++
		}
	}
	m.Redone, m.Disturbed = redone, disturbed
	fmt.Fprintf(h.log, "harness: %d runs in %v (%d redone because other processes disturbed them, %d left disturbed); load average %s -> %s\n",
		len(h.points), m.Duration, redone, disturbed, m.LoadStart, m.LoadEnd)
	dir := *out
	if dir == "" && !*smoke && *only == "" {
		dir = "bench/results"
	}
	if dir != "" {
		if werr := writeResults(dir, m, h.points, *readme); werr != nil {
			fmt.Fprintf(os.Stderr, "harness: %v\n", werr)
			os.Exit(1)
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "harness: FAILED: %v\n", err)
		os.Exit(1)
	}
}

// rewrite writes the outputs again from a results.json.
func rewrite(from, dir, readme string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	var r struct {
		Machine Machine `json:"machine"`
		Runs    []Point `json:"runs"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("%s: %w", from, err)
	}
	return writeResults(dir, r.Machine, r.Runs, readme)
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func orStr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// proc is a started peer process.
type proc struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	stderr bytes.Buffer
	ready  chan struct{}
	done   chan struct{}
}

func (h *harness) start(name string, args ...string) (*proc, error) {
	p := &proc{cmd: exec.Command(name, args...), ready: make(chan struct{}), done: make(chan struct{})}
	p.cmd.Stdout = &p.stdout
	errPipe, err := p.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		sc := bufio.NewScanner(errPipe)
		once := false
		for sc.Scan() {
			line := sc.Text()
			if line == "ready" && !once {
				once = true
				close(p.ready)
				continue
			}
			if !strings.HasPrefix(line, "Warn: Interface lo reports as a loopback") {
				p.stderr.WriteString(line + "\n")
			}
		}
		p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// wait waits for p to exit, killing it after d.
func (p *proc) wait(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		p.cmd.Process.Kill()
		<-p.done
		return false
	}
}

func (p *proc) cpu() float64 {
	if p.cmd.ProcessState == nil {
		return 0
	}
	ru, ok := p.cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0
	}
	return time.Duration(syscall.TimevalToNsec(ru.Utime) + syscall.TimevalToNsec(ru.Stime)).Seconds()
}

// waitReady waits until p printed "ready" (or exited, or 5 s passed).
func (p *proc) waitReady() error {
	select {
	case <-p.ready:
		return nil
	case <-p.done:
		return fmt.Errorf("exited before ready: %s", strings.TrimSpace(p.stderr.String()))
	case <-time.After(5 * time.Second):
		return errors.New("not ready after 5s")
	}
}

// run runs one point. The machine is shared: if other processes used
// more than a quarter of a core meanwhile, the run is marked disturbed,
// kept (Superseded) in the results, and done again once the machine is
// quiet, at most twice, within a total waiting budget for the sweep.
func (h *harness) run(pt Point, duration time.Duration, latency bool) Point {
	for try := 0; ; try++ {
		busy0, self0 := busyCPU(), selfCPU()
		p := h.runOnce(pt, duration, latency)
		foreign := busyCPU() - busy0 - (selfCPU() - self0) - p.SenderCPU - p.ReceiverCPU*float64(p.Receivers)
		p.ForeignCPU = max(foreign, 0)
		p.Disturbed = p.Wall > 0 && p.ForeignCPU > 0.25*p.Wall
		if !p.Disturbed || try == 2 || h.quietBudget <= 0 {
			return p
		}
		fmt.Fprintf(h.log, "  (disturbed: other processes used %.1f CPU s in %.1f s; again when quiet)\n", p.ForeignCPU, p.Wall)
		p.Superseded = true
		h.points = append(h.points, p)
		h.waitQuiet()
	}
}

// waitQuiet waits until other processes use less than 0.15 cores over
// half a second, spending at most what is left of h.quietBudget.
func (h *harness) waitQuiet() {
	for h.quietBudget > 0 {
		b0, s0 := busyCPU(), selfCPU()
		time.Sleep(500 * time.Millisecond)
		h.quietBudget -= 500 * time.Millisecond
		if busyCPU()-b0-(selfCPU()-s0) < 0.075 {
			return
		}
	}
}

// busyCPU returns the CPU seconds the machine spent in user and system
// mode since boot (/proc/stat; interrupts and softirqs left out, since
// packet processing there is not charged to our processes either).
func busyCPU() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	if len(f) < 4 || f[0] != "cpu" {
		return 0
	}
	var j float64
	for _, x := range f[1:4] {
		v, _ := strconv.ParseFloat(x, 64)
		j += v
	}
	return j / 100 // USER_HZ
}

// selfCPU is the harness's own CPU time.
func selfCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(syscall.TimevalToNsec(ru.Utime) + syscall.TimevalToNsec(ru.Stime)).Seconds()
}

// runOnce runs one point and fills its results.
func (h *harness) runOnce(pt Point, duration time.Duration, latency bool) Point {
	pt.FEC = "off"
	if pt.Impl == implRelmFEC {
		pt.FEC = fecSpec
	}
	h.port++
	if h.port > 7999 {
		h.port = 7600
	}
	group := "239.192.0.1:" + strconv.Itoa(h.port)
	timeout := duration + 15*time.Second
	var sendArgs, recvArgs []string
	var sendBin, recvBin string
	common := []string{"--size", strconv.Itoa(pt.Size)}
	rate := strconv.FormatFloat(pt.Rate, 'f', 0, 64)
	switch pt.Impl {
	case implRelm, implRelmNoOff, implRaw, implRawGSO, implRelmBatch, implRelmFEC:
		kind := "relm"
		if pt.Impl == implRaw || pt.Impl == implRawGSO {
			kind = "raw"
		}
		off := strconv.FormatBool(pt.Impl != implRelmNoOff && pt.Impl != implRaw)
		common = append(common, "--group", group, "--offload="+off, "--timeout", timeout.String())
		sendBin, recvBin = filepath.Join(h.bin, "benchpeer"), filepath.Join(h.bin, "benchpeer")
		sendArgs = append([]string{kind + "-send", "--duration", duration.String(), "--rate", rate}, common...)
		recvArgs = append([]string{kind + "-recv"}, common...)
		if pt.Impl == implRelmBatch {
			sendArgs = append(sendArgs, "--batch", batchDelay)
		}
		if pt.Impl == implRelmFEC {
			sendArgs = append(sendArgs, "--fec", fecSpec)
		}
		if latency {
			recvArgs = append(recvArgs, "--latency")
		}
		if pt.Loss > 0 {
			h.seed++
			recvArgs = append(recvArgs, "--loss", fmt.Sprintf("loss=%g,seed=%d", pt.Loss, h.seed))
		}
	case implOpenPGM:
		// One TPDU per message: an MTU that holds the largest message.
		mtu := strconv.Itoa(max(1500, pt.Size+28+24+64))
		common = append(common, "--group", "239.192.0.1", "--port", strconv.Itoa(h.port), "--mtu", mtu,
			"--timeout-ms", strconv.FormatInt(timeout.Milliseconds(), 10))
		sendBin, recvBin = h.pgm, h.pgm
		sendArgs = append([]string{"send", "--duration-ms", strconv.FormatInt(duration.Milliseconds(), 10), "--rate", rate}, common...)
		recvArgs = append([]string{"recv"}, common...)
		if latency {
			recvArgs = append(recvArgs, "--latency")
		}
	}
	if pt.Loss > 0 {
		pt.LossVia = "lossy"
	}
	if pt.Loss > 0 && pt.Impl == implOpenPGM {
		// libpgm reads its sockets itself: drop in the kernel instead,
		// multicast only (data, repairs, SPMs, NCFs; not the NAKs).
		pt.LossVia = "iptables"
		rule := []string{"INPUT", "-p", "udp", "-d", "239.192.0.1", "--dport", strconv.Itoa(h.port),
			"-m", "statistic", "--mode", "random", "--probability", strconv.FormatFloat(pt.Loss, 'g', -1, 64), "-j", "DROP"}
		if out, err := exec.Command("iptables", append([]string{"-A"}, rule...)...).CombinedOutput(); err != nil {
			pt.Err = fmt.Sprintf("iptables: %v: %s", err, out)
			return pt
		}
		defer exec.Command("iptables", append([]string{"-D"}, rule...)...).Run()
	}
	t0 := time.Now()
	fail := func(err error) Point {
		pt.Err = err.Error()
		pt.Wall = time.Since(t0).Seconds()
		fmt.Fprintf(h.log, "  %-20s %-10s size %5d loss %4.1f%% rcv %d: ERROR %v\n", pt.Impl, pt.Kind, pt.Size, 100*pt.Loss, pt.Receivers, err)
		return pt
	}
	var rcvs []*proc
	defer func() { // nothing outlives its run
		for _, r := range rcvs {
			r.wait(0)
		}
	}()
	for range pt.Receivers {
		r, err := h.start(recvBin, recvArgs...)
		if err != nil {
			return fail(err)
		}
		rcvs = append(rcvs, r)
		if err := r.waitReady(); err != nil {
			return fail(fmt.Errorf("receiver: %w", err))
		}
	}
	if pt.Impl == implOpenPGM {
		time.Sleep(100 * time.Millisecond) // OpenPGM: receivers bind before the sender
	}
	snd, err := h.start(sendBin, sendArgs...)
	if err != nil {
		return fail(err)
	}
	if err := snd.waitReady(); err != nil {
		snd.wait(0)
		return fail(fmt.Errorf("sender: %w", err))
	}
	deadline := time.Now().Add(timeout + 5*time.Second)
	for _, r := range rcvs {
		r.wait(time.Until(deadline))
	}
	snd.cmd.Process.Signal(syscall.SIGTERM)
	snd.wait(5 * time.Second)
	pt.Wall = time.Since(t0).Seconds()

	var sr sendResult
	if err := json.Unmarshal(lastJSON(snd.stdout.Bytes()), &sr); err != nil {
		return fail(fmt.Errorf("sender output %q: %v; stderr %s", snd.stdout.String(), err, snd.stderr.String()))
	}
	pt.Sent, pt.RDATA = sr.Msgs, sr.RDATA
	pt.SenderCPU = snd.cpu()
	if sr.Bytes > 0 {
		pt.SenderCPUGB = pt.SenderCPU / (float64(sr.Bytes) / 1e9)
	}
	pt.Complete = true
	pt.Completeness = 1
	var okSum, bytesSum, rateSum, cpuSum float64
	var rep50, rep99, l50, l99, l999 []float64
	for i, r := range rcvs {
		var rr recvResult
		if err := json.Unmarshal(lastJSON(r.stdout.Bytes()), &rr); err != nil {
			return fail(fmt.Errorf("receiver %d output %q: %v; stderr %s", i, r.stdout.String(), err, r.stderr.String()))
		}
		cpuSum += r.cpu()
		okSum += float64(rr.OK)
		bytesSum += float64(rr.Bytes)
		if span := float64(rr.LastNS-sr.StartNS) / 1e9; rr.OK > 0 && span > 0 {
			rateSum += float64(rr.OK) / span
		}
		if sr.Msgs > 0 {
			pt.Completeness = min(pt.Completeness, float64(rr.OK)/float64(sr.Msgs))
		}
		if rr.OK != sr.Msgs || rr.Bad != 0 || rr.Missing != 0 || rr.OutOfOrder != 0 || !rr.End || rr.LossEvents != 0 {
			pt.Complete = false
		}
		pt.NAKs += rr.NAKs
		pt.LossEvents += rr.LossEvents
		for k, v := range rr.LossReasons {
			pt.LossReasons += fmt.Sprintf("r%d %s:%d ", i, k, v)
		}
		if rr.Repair != nil {
			rep50 = append(rep50, float64(rr.Repair.P50)/1e6)
			rep99 = append(rep99, float64(rr.Repair.P99)/1e6)
		}
		if rr.Latency != nil {
			l50 = append(l50, float64(rr.Latency.P50)/1e3)
			l99 = append(l99, float64(rr.Latency.P99)/1e3)
			l999 = append(l999, float64(rr.Latency.P999)/1e3)
		}
	}
	n := float64(len(rcvs))
	pt.Delivered = uint64(okSum / n)
	pt.MsgsPerSec = rateSum / n
	pt.MBPerSec = pt.MsgsPerSec * float64(pt.Size) / 1e6
	pt.ReceiverCPU = cpuSum / n
	if bytesSum > 0 {
		pt.ReceiverCPUGB = pt.ReceiverCPU / (bytesSum / n / 1e9)
	}
	// Several receivers: the worst one's percentile.
	pt.RepairP50, pt.RepairP99 = maxOf(rep50), maxOf(rep99)
	pt.LatP50, pt.LatP99, pt.LatP999 = maxOf(l50), maxOf(l99), maxOf(l999)
	status := "complete"
	if !pt.Complete {
		status = fmt.Sprintf("INCOMPLETE %.4f %s", pt.Completeness, pt.LossReasons)
	}
	fmt.Fprintf(h.log, "  %-20s %-10s size %5d loss %4.1f%% rcv %d rate %8.0f: %9.0f msgs/s %8.1f MB/s cpu s/GB %5.2f/%5.2f %s\n",
		pt.Impl, pt.Kind, pt.Size, 100*pt.Loss, pt.Receivers, pt.Rate, pt.MsgsPerSec, pt.MBPerSec, pt.SenderCPUGB, pt.ReceiverCPUGB, status)
	return pt
}

// lastJSON returns the last line of out that starts with '{' (OpenPGM
// prints warnings on stdout).
func lastJSON(out []byte) []byte {
	lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
	for i := len(lines) - 1; i >= 0; i-- {
		if bytes.HasPrefix(lines[i], []byte("{")) {
			return lines[i]
		}
	}
	return out
}

func maxOf(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	return slices.Max(v)
}

// keptUp: a probe passes when delivery was complete and the receivers
// kept pace with the offered rate. Under loss the last repairs come after
// the last message was sent (a lost last packet shows only in the SPM
// heartbeat, 2 ms on, and its repair may take a few rounds), which a
// 1-second probe counts against its rate: 85% of the offered rate is
// keeping pace there.
func keptUp(p Point) bool {
	pace := 0.97
	if p.Loss > 0 {
		pace = 0.85
	}
	return p.Err == "" && p.Complete && p.MsgsPerSec >= pace*p.Rate
}

// calibrate finds, in a few short probes, the highest rate at which impl
// delivers everything to every receiver: PGM has no flow control, so a
// sender faster than its receivers makes them lose data for good (the
// window passes the holes) and a reliable transport must be run at a rate
// its receivers sustain. The rate doubles until a probe fails, then
// bisects. Raw baselines are not calibrated: they blast.
func (h *harness) calibrate(impl string, size, receivers int, guess float64) float64 {
	return h.search(impl, size, receivers, 0, guess, 0, 5)
}

// search finds in probes probes the highest rate at which impl delivers
// everything to every receiver under loss (see calibrate).
// A ceiling above 0 is a rate known to be enough (under loss: the
// loss-free rate): the search does not go beyond it, and stops there.
func (h *harness) search(impl string, size, receivers int, loss, guess, ceiling float64, probes int) float64 {
	lo, hi, rate := 0.0, 0.0, guess
	if ceiling > 0 {
		hi = ceiling * 1.0001 // bisect below it once a probe passed
		rate = min(rate, ceiling)
	}
	for range probes {
		if lo >= ceiling && ceiling > 0 {
			break // the ceiling passed: nothing more to find
		}
		p := h.run(Point{Impl: impl, Kind: "probe", Size: size, Loss: loss, Receivers: receivers, Rate: rate}, time.Second, false)
		h.points = append(h.points, p)
		if keptUp(p) {
			lo = rate
		} else {
			hi = rate
		}
		switch {
		case hi == 0:
			rate *= 2
		case lo == 0:
			rate *= 0.5
		case ceiling > 0 && hi > ceiling:
			rate = ceiling // the guess passed: try the ceiling
		default:
			rate = (lo + hi) / 2
		}
	}
	if lo == 0 {
		return rate // none passed: the lowest tried, halved; the runs will show it
	}
	return lo
}

// lossGuess is where the search for the highest complete rate under
// loss starts, as a share of the loss-free rate.
const lossGuess = 0.85

// lossProbes is the number of probes of that search, which does not go
// beyond the loss-free rate: 85% passes, then 100% (done) or 92.5%; 85%
// fails, then 42.5%, then 64%.
const lossProbes = 3

// guesses are the starting rates of the calibration, msgs/s.
var guesses = map[int]float64{64: 200000, 512: 200000, 1400: 150000, 8192: 30000}

func (h *harness) full(reps int) {
	sizes := []int{64, 512, 1400, 8192}
	impls := []string{implRelm, implRaw, implRawGSO, implOpenPGM, implRelmNoOff}
	if h.pgm == "" {
		impls = slices.DeleteFunc(impls, func(s string) bool { return s == implOpenPGM })
	}
	for _, size := range sizes {
		for _, nr := range []int{1, 4} {
			fmt.Fprintf(h.log, "harness: size %d, %d receiver(s)\n", size, nr)
			rates := map[string]float64{}
			for _, impl := range impls {
				if reliable[impl] && (impl != implRelmNoOff || nr == 1) {
					rates[impl] = h.calibrate(impl, size, nr, guesses[size])
				}
			}
			impls := impls
			if batchSizes[size] && nr == 1 {
				impls = append(slices.Clone(impls), implRelmBatch)
				rates[implRelmBatch] = h.calibrate(implRelmBatch, size, nr, batchGuesses[size])
			}
			// Throughput without loss, interleaved A B C D A B C D.
			for rep := range reps {
				for _, impl := range impls {
					if impl == implRelmNoOff && nr != 1 {
						continue
					}
					h.points = append(h.points, h.run(Point{Impl: impl, Kind: "throughput", Size: size, Receivers: nr, Rep: rep, Rate: rates[impl]}, h.duration, false))
				}
			}
			// Under loss (OpenPGM only with --openpgm-loss, 1 receiver: its
			// loss comes from iptables and hits every receiver alike): at
			// the highest rate a short search finds complete, like the
			// loss-free runs; their 0% figure is the goodput curve's start.
			for _, loss := range []float64{0.01, 0.05} {
				r := h.search(implRelm, size, nr, loss, lossGuess*rates[implRelm], rates[implRelm], lossProbes)
				h.points = append(h.points, h.run(Point{Impl: implRelm, Kind: "loss", Size: size, Loss: loss, Receivers: nr, Rate: r}, h.duration, false))
				if fecSizes[size] { // the same with parity, against the same 0% figure
					r := h.search(implRelmFEC, size, nr, loss, lossGuess*rates[implRelm], rates[implRelm], lossProbes)
					h.points = append(h.points, h.run(Point{Impl: implRelmFEC, Kind: "loss", Size: size, Loss: loss, Receivers: nr, Rate: r}, h.duration, false))
				}
				if nr == 1 && h.pgm != "" && h.pgmLoss {
					r := h.search(implOpenPGM, size, nr, loss, lossGuess*rates[implOpenPGM], rates[implOpenPGM], lossProbes)
					h.points = append(h.points, h.run(Point{Impl: implOpenPGM, Kind: "loss", Size: size, Loss: loss, Receivers: nr, Rate: r}, h.duration, false))
				}
			}
		}
	}
	// One-way latency at a fixed 10k msgs/s.
	fmt.Fprintln(h.log, "harness: latency at 10k msgs/s")
	for _, size := range []int{64, 1400} {
		for _, impl := range impls {
			if impl == implRelmNoOff {
				continue
			}
			h.points = append(h.points, h.run(Point{Impl: impl, Kind: "latency", Size: size, Receivers: 1, Rate: 10000}, 2*time.Second, true))
		}
		h.points = append(h.points, h.run(Point{Impl: implRelm, Kind: "latency", Size: size, Loss: 0.01, Receivers: 1, Rate: 10000}, 2*time.Second, true))
	}
}

// only runs the points of spec (IMPL:SIZE:RCV[:LOSS], comma-separated):
// the rate of each reliable one is searched as in the full sweep (under
// loss from the default guess, not from a loss-free rate), then reps runs
// of each, interleaved A B A B. For measuring one change, A/B, without
// the whole sweep.
func (h *harness) only(spec string, reps int) error {
	var pts []Point
	for _, f := range strings.Split(spec, ",") {
		var p Point
		parts := strings.Split(f, ":")
		if len(parts) < 3 || len(parts) > 4 {
			return fmt.Errorf("--point %q: want IMPL:SIZE:RCV[:LOSS]", f)
		}
		p.Impl = parts[0]
		var err error
		if p.Size, err = strconv.Atoi(parts[1]); err != nil || p.Size < 16 {
			return fmt.Errorf("--point %q: bad size", f)
		}
		if p.Receivers, err = strconv.Atoi(parts[2]); err != nil || p.Receivers < 1 || p.Receivers > 16 {
			return fmt.Errorf("--point %q: bad receiver count", f)
		}
		if len(parts) == 4 {
			if p.Loss, err = strconv.ParseFloat(parts[3], 64); err != nil || p.Loss < 0 || p.Loss >= 1 {
				return fmt.Errorf("--point %q: bad loss", f)
			}
		}
		switch p.Impl {
		case implRelm, implRelmNoOff, implRaw, implRawGSO, implRelmBatch, implRelmFEC:
		case implOpenPGM:
			if h.pgm == "" {
				return fmt.Errorf("--point %q: pgmbench not built", f)
			}
		default:
			return fmt.Errorf("--point %q: unknown implementation", f)
		}
		p.Kind = "throughput"
		if p.Loss > 0 {
			p.Kind = "loss"
		}
		if reliable[p.Impl] {
			guess := guesses[p.Size]
			if guess == 0 {
				guess = 100000
			}
			if p.Loss > 0 {
				p.Rate = h.search(p.Impl, p.Size, p.Receivers, p.Loss, guess, 0, 5)
			} else {
				p.Rate = h.calibrate(p.Impl, p.Size, p.Receivers, guess)
			}
		}
		pts = append(pts, p)
	}
	for rep := range reps {
		for _, p := range pts {
			p.Rep = rep
			h.points = append(h.points, h.run(p, h.duration, false))
		}
	}
	for _, a := range append(aggregate(h.points, "throughput"), aggregate(h.points, "loss")...) {
		fmt.Fprintf(h.log, "harness: %s size %d rcv %d loss %g%%: offered %s, delivered %.0f msgs/s [%.0f–%.0f] over %d runs, %s\n",
			a.key.Impl, a.key.Size, a.key.Receivers, 100*a.key.Loss, rateStr(a.key.Rate), a.msgs, a.lo, a.hi, a.n, a.completeness())
	}
	return nil
}

// smoke runs a few short points and checks completeness, not speed.
func (h *harness) smoke() error {
	var bad []string
	check := func(p Point, wantComplete bool) {
		h.points = append(h.points, p)
		switch {
		case p.Err != "":
			bad = append(bad, fmt.Sprintf("%s size %d: %s", p.Impl, p.Size, p.Err))
		case wantComplete && !p.Complete:
			bad = append(bad, fmt.Sprintf("%s size %d loss %g receivers %d: incomplete (%.4f)", p.Impl, p.Size, p.Loss, p.Receivers, p.Completeness))
		case p.Delivered == 0:
			bad = append(bad, fmt.Sprintf("%s size %d: nothing delivered", p.Impl, p.Size))
		}
	}
	d := 300 * time.Millisecond
	for _, nr := range []int{1, 2} {
		check(h.run(Point{Impl: implRelm, Kind: "throughput", Size: 1400, Receivers: nr, Rate: 20000}, d, false), true)
		check(h.run(Point{Impl: implRelm, Kind: "loss", Size: 512, Loss: 0.05, Receivers: nr, Rate: 20000}, d, false), true)
		check(h.run(Point{Impl: implRelmNoOff, Kind: "throughput", Size: 8192, Receivers: nr, Rate: 5000}, d, false), true)
		check(h.run(Point{Impl: implRelmBatch, Kind: "throughput", Size: 64, Receivers: nr, Rate: 20000}, d, false), true)
		check(h.run(Point{Impl: implRelmFEC, Kind: "loss", Size: 1400, Loss: 0.05, Receivers: nr, Rate: 20000}, d, false), true)
		check(h.run(Point{Impl: implRaw, Kind: "throughput", Size: 512, Receivers: nr, Rate: 20000}, d, false), false)
		check(h.run(Point{Impl: implRawGSO, Kind: "throughput", Size: 512, Receivers: nr, Rate: 20000}, d, false), false)
		if h.pgm != "" {
			// Slowly: on one host a lost OpenPGM packet is often never
			// repaired (bench/README.md), so do not make the kernel drop.
			check(h.run(Point{Impl: implOpenPGM, Kind: "throughput", Size: 1400, Receivers: nr, Rate: 5000}, d, false), true)
		}
	}
	check(h.run(Point{Impl: implRelm, Kind: "latency", Size: 64, Receivers: 1, Rate: 10000}, d, true), true)
	if h.pgm == "" {
		fmt.Fprintln(h.log, "harness: smoke: OpenPGM skipped (pgmbench not built)")
	}
	if len(bad) > 0 {
		return errors.New(strings.Join(bad, "; "))
	}
	fmt.Fprintf(h.log, "harness: smoke: all %d runs complete\n", len(h.points))
	return nil
}

// Machine describes where the numbers come from.
type Machine struct {
	Date      string `json:"date"`
	CPU       string `json:"cpu"`
	Cores     int    `json:"cores"`
	Kernel    string `json:"kernel"`
	Go        string `json:"go"`
	OpenPGM   string `json:"openpgm"`
	LoadStart string `json:"load_start"`
	LoadEnd   string `json:"load_end"`
	Duration  string `json:"duration"`
	Network   string `json:"network"`
	Redone    int    `json:"redone"`    // runs done again because other processes disturbed them
	Disturbed int    `json:"disturbed"` // runs in the tables that other processes disturbed
}

func describeMachine() Machine {
	m := Machine{
		Date:      time.Now().UTC().Format("2006-01-02 15:04 MST"),
		Cores:     runtime.NumCPU(),
		Go:        runtime.Version(),
		LoadStart: loadavg(),
		Network:   "lo in a private network namespace (scripts/netns), MTU 65536",
		OpenPGM:   os.Getenv("OPENPGM_VERSION"),
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	return m
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
