package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// writeResults writes results.json (machine and every run, probes
// included), results.csv (every run), results.md (the tables) and
// plot.svg into dir, and the tables and plot link into readme between
// its markers.
func writeResults(dir string, m Machine, pts []Point, readme string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	j, err := json.MarshalIndent(struct {
		Machine Machine `json:"machine"`
		Runs    []Point `json:"runs"`
	}{m, pts}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(j, '\n'), 0o644); err != nil {
		return err
	}
	if err := writeCSV(filepath.Join(dir, "results.csv"), pts); err != nil {
		return err
	}
	md := tables(m, pts)
	if err := os.WriteFile(filepath.Join(dir, "results.md"), []byte(md), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "plot.svg"), []byte(plot(pts)), 0o644); err != nil {
		return err
	}
	if readme != "" {
		return updateReadme(readme, md)
	}
	return nil
}

const (
	beginMarker = "<!-- results:begin (written by bench/run) -->"
	endMarker   = "<!-- results:end -->"
)

func updateReadme(path, md string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(b)
	i, k := strings.Index(s, beginMarker), strings.Index(s, endMarker)
	if i < 0 || k < i {
		return fmt.Errorf("%s: no results markers", path)
	}
	s = s[:i+len(beginMarker)] + "\n" + md + "\n![throughput and goodput](results/plot.svg)\n" + s[k:]
	return os.WriteFile(path, []byte(s), 0o644)
}

func writeCSV(path string, pts []Point) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	w.Write([]string{"impl", "kind", "size", "loss", "receivers", "fec", "rep", "offered_msgs_s", "sent", "delivered",
		"msgs_s", "mb_s", "completeness", "complete", "sender_cpu_s", "receiver_cpu_s", "sender_cpu_s_gb", "receiver_cpu_s_gb",
		"repair_p50_ms", "repair_p99_ms", "lat_p50_us", "lat_p99_us", "lat_p999_us", "naks", "rdata", "loss_events", "wall_s", "error"})
	g := func(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	for _, p := range pts {
		w.Write([]string{p.Impl, p.Kind, strconv.Itoa(p.Size), g(p.Loss), strconv.Itoa(p.Receivers), p.FEC, strconv.Itoa(p.Rep),
			g(p.Rate), u(p.Sent), u(p.Delivered), g(p.MsgsPerSec), g(p.MBPerSec), g(p.Completeness), strconv.FormatBool(p.Complete),
			g(p.SenderCPU), g(p.ReceiverCPU), g(p.SenderCPUGB), g(p.ReceiverCPUGB), g(p.RepairP50), g(p.RepairP99),
			g(p.LatP50), g(p.LatP99), g(p.LatP999), u(p.NAKs), u(p.RDATA), u(p.LossEvents), g(p.Wall), p.Err})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// agg is the mean of the repetitions of one point.
type agg struct {
	key                  Point // Impl, Kind, Size, Loss, Receivers, Rate of the first
	n                    int
	msgs, mb, lo, hi     float64
	compl                float64
	complete             bool
	scpu, rcpu           float64
	rep50, rep99         float64
	l50, l99, l999       float64
	naks, rdata, lossEvs uint64
	errs                 []string
	disturbed            bool
	zero                 *agg // loss runs: the loss-free figure (lossAggs)
}

func aggregate(pts []Point, kind string) []*agg {
	var out []*agg
	idx := map[string]*agg{}
	for _, p := range pts {
		if p.Kind != kind || p.Superseded {
			continue
		}
		k := fmt.Sprintf("%s/%d/%g/%d", p.Impl, p.Size, p.Loss, p.Receivers)
		a := idx[k]
		if a == nil {
			a = &agg{key: p, lo: math.Inf(1), compl: 1, complete: true}
			idx[k] = a
			out = append(out, a)
		}
		if p.Err != "" {
			a.errs = append(a.errs, p.Err)
			a.complete = false
			a.compl = 0
			continue
		}
		a.n++
		a.disturbed = a.disturbed || p.Disturbed
		a.msgs += p.MsgsPerSec
		a.mb += p.MBPerSec
		a.lo, a.hi = min(a.lo, p.MsgsPerSec), max(a.hi, p.MsgsPerSec)
		a.compl = min(a.compl, p.Completeness)
		a.complete = a.complete && p.Complete
		a.scpu += p.SenderCPUGB
		a.rcpu += p.ReceiverCPUGB
		a.rep50, a.rep99 = max(a.rep50, p.RepairP50), max(a.rep99, p.RepairP99)
		a.l50, a.l99, a.l999 = max(a.l50, p.LatP50), max(a.l99, p.LatP99), max(a.l999, p.LatP999)
		a.naks += p.NAKs
		a.rdata += p.RDATA
		a.lossEvs += p.LossEvents
	}
	for _, a := range out {
		if a.n > 0 {
			f := float64(a.n)
			a.msgs, a.mb, a.scpu, a.rcpu = a.msgs/f, a.mb/f, a.scpu/f, a.rcpu/f
		}
	}
	return out
}

// lossAggs returns the loss runs' aggregates, each with the loss-free
// figure of its implementation, size and receivers (zero). Where the loss
// runs have no 0% point of their own (the sweep runs none since the loss
// points search their rate), the throughput runs' aggregate is taken as
// the 0% point, placed before that implementation's first loss point.
func lossAggs(pts []Point) []*agg {
	thr := map[string]*agg{}
	for _, a := range aggregate(pts, "throughput") {
		thr[fmt.Sprintf("%s/%d/%d", a.key.Impl, a.key.Size, a.key.Receivers)] = a
	}
	loss := aggregate(pts, "loss")
	has0 := map[string]bool{}
	for _, a := range loss {
		if a.key.Loss == 0 {
			has0[fmt.Sprintf("%s/%d/%d", a.key.Impl, a.key.Size, a.key.Receivers)] = true
		}
	}
	var out []*agg
	for _, a := range loss {
		k := fmt.Sprintf("%s/%d/%d", a.key.Impl, a.key.Size, a.key.Receivers)
		if z := thr[k]; z != nil && !has0[k] {
			has0[k] = true
			z0 := *z
			z0.key.Kind, z0.key.Loss, z0.zero = "loss", 0, z
			out = append(out, &z0)
		}
		out = append(out, a)
	}
	// A run's own 0% point, if it has one, is the reference; relmcast's
	// for relmcast-fec, which runs under loss only.
	for _, a := range out {
		impl := a.key.Impl
		if impl == implRelmFEC {
			impl = implRelm
		}
		k := fmt.Sprintf("%s/%d/%d", impl, a.key.Size, a.key.Receivers)
		for _, b := range out {
			if b.key.Loss == 0 && fmt.Sprintf("%s/%d/%d", b.key.Impl, b.key.Size, b.key.Receivers) == k {
				a.zero = b
				break
			}
		}
	}
	return out
}

func (a *agg) completeness() string {
	if a.disturbed {
		return a.completeness1() + " †"
	}
	return a.completeness1()
}

func (a *agg) completeness1() string {
	switch {
	case len(a.errs) > 0:
		return "error: " + a.errs[0]
	case a.complete:
		return "100% ✓"
	case reliable[a.key.Impl]:
		return fmt.Sprintf("**%.2f%%** ✗", 100*a.compl)
	}
	return fmt.Sprintf("%.2f%% (no repair)", 100*a.compl)
}

func rateStr(r float64) string {
	if r == 0 {
		return "max"
	}
	return fmt.Sprintf("%.0f", r)
}

func tables(m Machine, pts []Point) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Run %s on %s, %d cores, %s, %s, OpenPGM %s; %s. Load average %s at the start, %s at the end (the 4-receiver runs alone make 5); the whole run took %s. %d runs were done again because other processes on the machine used more than a quarter core meanwhile; † marks the %d that still were disturbed.\n\n",
		m.Date, m.CPU, m.Cores, m.Kernel, m.Go, orStr(m.OpenPGM, "?"), m.Network, m.LoadStart, m.LoadEnd, m.Duration, m.Redone, m.Disturbed)
	b.WriteString("### Throughput, no loss (FEC off)\n\n")
	b.WriteString("Reliable implementations run at the highest rate their receivers sustained completely in a short search (\"offered\"); the raw baselines blast as fast as they can and lose what the receivers cannot take. msgs/s and MB/s are delivered (checked, in order) per receiver, mean of the repetitions (range in brackets); CPU is user+system seconds per GB of payload sent (sender) or received (receiver, mean).\n\n")
	b.WriteString("| size | rcv | implementation | offered msgs/s | delivered msgs/s | MB/s | complete | sender CPU s/GB | receiver CPU s/GB | FEC |\n|---:|---:|---|---:|---:|---:|---|---:|---:|---|\n")
	for _, a := range aggregate(pts, "throughput") {
		k := a.key
		fmt.Fprintf(&b, "| %d | %d | %s | %s | %.0f [%.0f–%.0f] | %.1f | %s | %.2f | %.2f | %s |\n",
			k.Size, k.Receivers, k.Impl, rateStr(k.Rate), a.msgs, a.lo, a.hi, a.mb, a.completeness(), a.scpu, a.rcpu, k.FEC)
	}
	b.WriteString("\n### Under loss (FEC off, but relmcast-fec: groups of " + fecSpec[:strings.IndexByte(fecSpec, ':')] + " packets, " + fecSpec[strings.IndexByte(fecSpec, ':')+1:] + " pro-active parity packets each, parity on demand)\n\n")
	b.WriteString("At the highest rate a short search (" + strconv.Itoa(lossProbes) + " probes of 1 s, from 85% of the loss-free rate) found complete under that loss; the 0% rows are the loss-free runs above. \"of 0%\" is the goodput (delivered msgs/s) as a share of the 0% figure. relmcast: seeded loss in each receiver process (`--loss`), independent per receiver. OpenPGM only with `--openpgm-loss` (1 receiver; an iptables random drop of the multicast packets, not seeded; unreliable on one host, see bench/README.md). Repair latency (relmcast): from the moment a receiver sees a gap in the sequence numbers (a later packet arrived) to the moment the missing packet arrives; worst receiver's percentile.\n\n")
	b.WriteString("| size | rcv | implementation | loss | offered msgs/s | delivered msgs/s | of 0% | MB/s | complete | NAKs | RDATA | repair p50 ms | repair p99 ms | sender CPU s/GB | receiver CPU s/GB |\n|---:|---:|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|\n")
	for _, a := range lossAggs(pts) {
		k := a.key
		of := "–"
		if a.zero != nil && a.zero.msgs > 0 {
			of = fmt.Sprintf("%.2f", a.msgs/a.zero.msgs)
		}
		naks, rdata, r50, r99 := "–", "–", "–", "–"
		if k.Impl != implOpenPGM {
			naks, rdata = strconv.FormatUint(a.naks, 10), strconv.FormatUint(a.rdata, 10)
			if k.Loss > 0 {
				r50, r99 = fmt.Sprintf("%.1f", a.rep50), fmt.Sprintf("%.1f", a.rep99)
			}
		}
		fmt.Fprintf(&b, "| %d | %d | %s | %g%% | %.0f | %.0f | %s | %.1f | %s | %s | %s | %s | %s | %.2f | %.2f |\n",
			k.Size, k.Receivers, k.Impl, 100*k.Loss, k.Rate, a.msgs, of, a.mb, a.completeness(), naks, rdata, r50, r99, a.scpu, a.rcpu)
	}
	b.WriteString("\n### One-way latency at 10 000 msgs/s (1 receiver)\n\n")
	b.WriteString("Send time in the message, receive time after delivery to the application; one host, one clock.\n\n")
	b.WriteString("| size | implementation | loss | p50 µs | p99 µs | p99.9 µs | complete |\n|---:|---|---:|---:|---:|---:|---|\n")
	for _, a := range aggregate(pts, "latency") {
		k := a.key
		fmt.Fprintf(&b, "| %d | %s | %g%% | %.0f | %.0f | %.0f | %s |\n", k.Size, k.Impl, 100*k.Loss, a.l50, a.l99, a.l999, a.completeness())
	}
	return b.String()
}

// plot draws two charts side by side: delivered MB/s against message size
// per implementation (1 receiver solid, 4 dashed), and relmcast's goodput
// against loss per message size.
func plot(pts []Point) string {
	const W, H = 1100, 440
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", W, H, W, H)
	b.WriteString(`<rect width="100%" height="100%" fill="white"/>` + "\n")
	colors := map[string]string{implRelm: "#d62728", implRelmNoOff: "#ff9896", implRaw: "#1f77b4", implRawGSO: "#17becf", implOpenPGM: "#2ca02c", implRelmBatch: "#9467bd", implRelmFEC: "#bcbd22"}
	sizeColors := map[int]string{64: "#9467bd", 512: "#8c564b", 1400: "#e377c2", 8192: "#7f7f7f"}

	// Left: MB/s vs size, log-log.
	tp := aggregate(pts, "throughput")
	maxMB, minMB := 1.0, math.Inf(1)
	for _, a := range tp {
		if a.mb > 0 {
			maxMB, minMB = max(maxMB, a.mb), min(minMB, a.mb)
		}
	}
	if math.IsInf(minMB, 1) {
		minMB = 0.1
	}
	c1 := chart{x0: 70, y0: 40, w: 420, h: 320, xmin: math.Log2(32), xmax: math.Log2(16384),
		ymin: math.Floor(math.Log10(minMB)), ymax: math.Ceil(math.Log10(maxMB))}
	c1.frame(&b, "Delivered MB/s vs message size, no loss", "message size, bytes", "MB/s")
	for _, s := range []int{64, 512, 1400, 8192} {
		c1.xtick(&b, math.Log2(float64(s)), strconv.Itoa(s))
	}
	for e := c1.ymin; e <= c1.ymax; e++ {
		c1.ytick(&b, e, strconv.FormatFloat(math.Pow(10, e), 'g', -1, 64))
	}
	impls := []string{implRelm, implRelmNoOff, implRaw, implRawGSO, implOpenPGM, implRelmBatch}
	ly := 60.0
	for _, impl := range impls {
		any := false
		for _, nr := range []int{1, 4} {
			var xs, ys []float64
			var ok []bool
			for _, a := range tp {
				if a.key.Impl == impl && a.key.Receivers == nr && a.mb > 0 {
					xs = append(xs, math.Log2(float64(a.key.Size)))
					ys = append(ys, math.Log10(a.mb))
					ok = append(ok, a.complete)
				}
			}
			if len(xs) > 0 {
				any = true
				c1.line(&b, xs, ys, ok, colors[impl], map[bool]string{true: "6 4"}[nr != 1])
			}
		}
		if any {
			fmt.Fprintf(&b, `<line x1="%d" y1="%.0f" x2="%d" y2="%.0f" stroke="%s" stroke-width="3"/><text x="%d" y="%.0f">%s</text>`+"\n",
				500, ly, 520, ly, colors[impl], 525, ly+4, impl)
			ly += 18
		}
	}

	// Right: goodput vs loss, relmcast (1 and 4 receivers) and OpenPGM (1).
	lp := lossAggs(pts)
	var maxG float64 = 1
	for _, a := range lp {
		maxG = max(maxG, a.mb)
	}
	maxG = niceCeil(maxG)
	c2 := chart{x0: 690, y0: 40, w: 380, h: 320, xmin: 0, xmax: 5.5, ymin: 0, ymax: maxG}
	pgmLoss := slices.ContainsFunc(lp, func(a *agg) bool { return a.key.Impl == implOpenPGM })
	title, footer := "relmcast goodput vs injected loss", "solid: 1 receiver · dashed: 4 receivers · hollow dot: not every message delivered"
	if pgmLoss {
		title = "Goodput vs injected loss"
		footer = "solid: 1 receiver · dashed: 4 receivers · dotted: OpenPGM, 1 receiver · hollow dot: not every message delivered"
	}
	c2.frame(&b, title, "loss, %", "MB/s")
	for _, l := range []float64{0, 1, 5} {
		c2.xtick(&b, l, strconv.FormatFloat(l, 'g', -1, 64))
	}
	for i := 0; i <= 4; i++ {
		v := maxG * float64(i) / 4
		c2.ytick(&b, v, strconv.FormatFloat(v, 'f', 0, 64))
	}
	ly = 60
	for _, size := range []int{64, 512, 1400, 8192} {
		any := false
		for _, series := range []struct {
			impl string
			nr   int
			dash string
		}{{implRelm, 1, ""}, {implRelm, 4, "6 4"}, {implOpenPGM, 1, "2 3"}} {
			var xs, ys []float64
			var ok []bool
			for _, a := range lp {
				if a.key.Size == size && a.key.Receivers == series.nr && a.key.Impl == series.impl {
					xs = append(xs, 100*a.key.Loss)
					ys = append(ys, a.mb)
					ok = append(ok, a.complete)
				}
			}
			if len(xs) > 0 {
				any = true
				c2.line(&b, xs, ys, ok, sizeColors[size], series.dash)
			}
		}
		if any {
			fmt.Fprintf(&b, `<line x1="%d" y1="%.0f" x2="%d" y2="%.0f" stroke="%s" stroke-width="3"/><text x="%d" y="%.0f">%d B</text>`+"\n",
				1070, ly, 1090, ly, sizeColors[size], 1025, ly+4, size)
			ly += 18
		}
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" fill="#444">%s</text>`+"\n", W/2, H-8, footer)
	b.WriteString("</svg>\n")
	return b.String()
}

func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// chart maps data coordinates into a rectangle of the SVG.
type chart struct {
	x0, y0, w, h           float64
	xmin, xmax, ymin, ymax float64
}

func (c *chart) px(x float64) float64 { return c.x0 + (x-c.xmin)/(c.xmax-c.xmin)*c.w }
func (c *chart) py(y float64) float64 {
	y = min(max(y, c.ymin), c.ymax)
	return c.y0 + c.h - (y-c.ymin)/(c.ymax-c.ymin)*c.h
}

func (c *chart) frame(b *strings.Builder, title, xlabel, ylabel string) {
	fmt.Fprintf(b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="black"/>`+"\n", c.x0, c.y0, c.w, c.h)
	fmt.Fprintf(b, `<text x="%.0f" y="%.0f" font-size="13" font-weight="bold">%s</text>`+"\n", c.x0, c.y0-12, esc(title))
	fmt.Fprintf(b, `<text x="%.0f" y="%.0f" text-anchor="middle">%s</text>`+"\n", c.x0+c.w/2, c.y0+c.h+38, esc(xlabel))
	fmt.Fprintf(b, `<text x="%.0f" y="%.0f" text-anchor="middle" transform="rotate(-90 %.0f %.0f)">%s</text>`+"\n",
		c.x0-50, c.y0+c.h/2, c.x0-50, c.y0+c.h/2, esc(ylabel))
}

func (c *chart) xtick(b *strings.Builder, x float64, label string) {
	X := c.px(x)
	fmt.Fprintf(b, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#ddd"/><text x="%.1f" y="%.0f" text-anchor="middle">%s</text>`+"\n",
		X, c.y0, X, c.y0+c.h, X, c.y0+c.h+16, esc(label))
}

func (c *chart) ytick(b *strings.Builder, y float64, label string) {
	Y := c.py(y)
	fmt.Fprintf(b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#ddd"/><text x="%.0f" y="%.1f" text-anchor="end">%s</text>`+"\n",
		c.x0, Y, c.x0+c.w, Y, c.x0-6, Y+4, esc(label))
}

// line draws a polyline through the points, sorted by x, each marked by
// a dot: filled if ok, hollow if not.
func (c *chart) line(b *strings.Builder, xs, ys []float64, ok []bool, color string, dasharray string) {
	idx := make([]int, len(xs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(i, j int) int {
		switch {
		case xs[i] < xs[j]:
			return -1
		case xs[i] > xs[j]:
			return 1
		}
		return 0
	})
	var pts []string
	var fills []string
	for _, i := range idx {
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", c.px(xs[i]), c.py(ys[i])))
		if ok[i] {
			fills = append(fills, color)
		} else {
			fills = append(fills, "white")
		}
	}
	dash := ""
	if dasharray != "" {
		dash = ` stroke-dasharray="` + dasharray + `"`
	}
	fmt.Fprintf(b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", strings.Join(pts, " "), color, dash)
	for i, p := range pts {
		x, y, _ := strings.Cut(p, ",")
		fmt.Fprintf(b, `<circle cx="%s" cy="%s" r="3.5" fill="%s" stroke="%s" stroke-width="1.5"/>`+"\n", x, y, fills[i], color)
	}
}

func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
