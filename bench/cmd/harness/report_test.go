package main

import (
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteResults(t *testing.T) {
	var pts []Point
	for _, impl := range []string{implRelm, implRaw, implRawGSO, implOpenPGM, implRelmNoOff} {
		for _, size := range []int{64, 512, 1400, 8192} {
			for rep := range 2 {
				pts = append(pts, Point{Impl: impl, Kind: "throughput", Size: size, Receivers: 1, Rep: rep, FEC: "off",
					MsgsPerSec: 1000 * float64(size), MBPerSec: float64(size), Completeness: 1, Complete: impl != implOpenPGM})
			}
		}
	}
	for _, loss := range []float64{0, 0.01, 0.05} {
		pts = append(pts, Point{Impl: implRelm, Kind: "loss", Size: 1400, Loss: loss, Receivers: 4, MBPerSec: 100 - 10*loss, Complete: true, RepairP99: 12})
		pts = append(pts, Point{Impl: implOpenPGM, Kind: "loss", Size: 1400, Loss: loss, Receivers: 1, MBPerSec: 50, Completeness: 0.5})
	}
	pts = append(pts, Point{Impl: implRelm, Kind: "latency", Size: 64, Receivers: 1, LatP50: 70, LatP99: 400, LatP999: 1000, Complete: true})
	pts = append(pts, Point{Impl: implRaw, Kind: "probe", Err: "boom"})

	dir := t.TempDir()
	readme := filepath.Join(dir, "README.md")
	os.WriteFile(readme, []byte("head\n"+beginMarker+"\nold\n"+endMarker+"\ntail\n"), 0o644)
	if err := writeResults(dir, Machine{CPU: "test"}, pts, readme); err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadFile(filepath.Join(dir, "results.md"))
	for _, want := range []string{"| 1400 | 1 | relmcast | max | 1400000", "**50.00%** ✗", "| 64 | relmcast | 0% | 70 | 400 | 1000 |"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("results.md lacks %q:\n%s", want, md)
		}
	}
	r, _ := os.ReadFile(readme)
	if s := string(r); !strings.HasPrefix(s, "head\n"+beginMarker) || !strings.HasSuffix(s, endMarker+"\ntail\n") || strings.Contains(s, "old") || !strings.Contains(s, "plot.svg") {
		t.Errorf("README not updated between the markers:\n%s", s)
	}
	svg, _ := os.Open(filepath.Join(dir, "plot.svg"))
	defer svg.Close()
	d := xml.NewDecoder(svg)
	n := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("plot.svg is not well-formed: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "polyline" {
			n++
		}
	}
	if n < 6 {
		t.Errorf("plot.svg has %d lines, want at least 6", n)
	}
	// And back from results.json.
	if err := rewrite(filepath.Join(dir, "results.json"), t.TempDir(), ""); err != nil {
		t.Fatal(err)
	}
}

func TestLastJSON(t *testing.T) {
	out := []byte("Warn: Interface lo reports as a loopback device.\n{\"msgs\":3}\n")
	if got := string(lastJSON(out)); got != `{"msgs":3}` {
		t.Errorf("lastJSON = %q", got)
	}
}
