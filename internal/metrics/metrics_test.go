package metrics

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/relmcast/relmcast/internal/wire"
	"github.com/relmcast/relmcast/mcast"
	"github.com/relmcast/relmcast/mcast/mcasttest"
	"github.com/relmcast/relmcast/session"
)

var group = netip.MustParseAddrPort("239.192.0.1:7500")

// scrape gets h's text exposition and parses it with the Prometheus text
// parser.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Header.Set("Accept", "text/plain")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("scrape: HTTP %d: %s", rec.Code, rec.Body)
	}
	return parse(t, rec.Body)
}

func parse(t *testing.T, r io.Reader) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		t.Fatalf("text parser: %v", err)
	}
	return fams
}

// value returns the value of the sample of family name whose labels
// include want (name=value pairs).
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, want ...string) float64 {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Fatalf("no metric %s", name)
	}
	for _, m := range f.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		ok := true
		for i := 0; i+1 < len(want); i += 2 {
			ok = ok && labels[want[i]] == want[i+1]
		}
		if !ok {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	t.Fatalf("no sample of %s with %v", name, want)
	return 0
}

// TestScrape: a sender and a receiver over an in-memory network; k of
// N packets are dropped once on the way to the receiver. The scraped
// metrics, parsed with the Prometheus text parser, count what was
// injected: N messages, k NAKed, k repaired, k repair latency samples.
func TestScrape(t *testing.T) {
	const n, k = 200, 3
	nw := mcasttest.NewNetwork(mcasttest.NetworkConfig{})
	defer nw.Close()
	ep := nw.Endpoint(netip.MustParseAddr("10.0.1.1"), 0)
	ep.Join(group)
	var mu sync.Mutex
	// Numbers counted from the first ODATA: senders start at a random one.
	drop := map[uint32]bool{20: true, 90: true, 150: true}
	var first uint32
	seen := false
	ep.SetDrop(func(d mcasttest.Datagram) bool {
		var p wire.Packet
		if wire.Parse(d.Buf[:d.N], &p) != nil || p.Type != wire.TypeODATA {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		if !seen {
			first, seen = p.Seq, true
		}
		if drop[p.Seq-first] {
			delete(drop, p.Seq-first)
			return true
		}
		return false
	})
	r, err := mcast.Listen(group, &mcast.Config{Transport: ep, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s, err := mcast.NewSender(group, &mcast.Config{
		Transport: nw.Endpoint(netip.MustParseAddr("10.0.0.1"), group.Port()), Rate: -1, Linger: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	msg := make([]byte, 100)
	for range n {
		if err := s.Send(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var ev mcast.Event
	for got := 0; got < n; {
		if err := r.Read(ctx, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Kind == mcast.EventData {
			got++
		}
	}

	h, err := Handler(NewReceiverCollector(r), NewSenderCollector(s))
	if err != nil {
		t.Fatal(err)
	}
	fams := scrape(t, h)
	id := s.Source().String()
	for name, want := range map[string]float64{
		"relmcast_receiver_source_messages_total":               n,
		"relmcast_receiver_source_message_bytes_total":          n * 100,
		"relmcast_receiver_source_naks_total":                   k,
		"relmcast_receiver_source_repairs_total":                k,
		"relmcast_receiver_source_repair_latency_seconds":       k,
		"relmcast_receiver_source_loss_events_total":            0,
		"relmcast_receiver_source_lost_packets_total":           0,
		"relmcast_receiver_source_window_max_packets":           32768,
		"relmcast_sender_naks_total":                            k,
		"relmcast_sender_rdata_packets_total":                   k,
		"relmcast_sender_messages_total":                        n,
		"relmcast_sender_odata_packets_total":                   n,
		"relmcast_sender_window_packets":                        n,
		"relmcast_sender_naks_outside_window_total":             0,
		"relmcast_receiver_source_first_seen_timestamp_seconds": float64(r.Sources()[0].FirstSeen.UnixNano()) / 1e9,
	} {
		if got := value(t, fams, name, "source", id); got != want {
			t.Errorf("%s{source=%q} = %v; want %v", name, id, got, want)
		}
	}
	for name, want := range map[string]float64{
		"relmcast_receiver_messages_total": n,
		"relmcast_receiver_repairs_total":  k,
		"relmcast_receiver_sources":        1,
	} {
		if got := value(t, fams, name); got != want {
			t.Errorf("%s = %v; want %v", name, got, want)
		}
	}
	if got := value(t, fams, "relmcast_receiver_source_info", "source", id, "addr", "10.0.0.1", "state", "active"); got != 1 {
		t.Errorf("source info %v", got)
	}
	// The histogram: buckets in seconds, cumulative, ending at k.
	hist := fams["relmcast_receiver_source_repair_latency_seconds"]
	if hist.GetType() != dto.MetricType_HISTOGRAM {
		t.Fatalf("repair latency is a %v", hist.GetType())
	}
	hm := hist.Metric[0].Histogram
	b := hm.Bucket
	// The text format ends with the +Inf bucket. Real time: a loaded
	// machine may take longer than the back-off, but not seconds.
	if len(b) != len(mcast.LatencyBounds)+1 || b[0].GetUpperBound() != 0.0001 || b[len(b)-2].GetUpperBound() != 10 ||
		b[len(b)-1].GetCumulativeCount() != k || hm.GetSampleSum() <= 0 || hm.GetSampleSum() > k*1.0 {
		t.Errorf("histogram %v", hm)
	}
	if _, ok := fams["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}
}

// fakeSender is a SenderStats with late NAKers.
type fakeSender struct{ st mcast.SenderStats }

func (f fakeSender) Stats() mcast.SenderStats { return f.st }

// TestLateNAKers: each receiver NAKing data already gone is one series
// with its address.
func TestLateNAKers(t *testing.T) {
	var st mcast.SenderStats
	st.Source = mcast.SourceID{GSI: [6]byte{1, 2, 3, 4, 5, 6}, Port: 1000}
	st.NAKsOutsideWindow = 12
	st.NCFsDropped, st.NCFsEliminated = 4, 5
	st.LateNAKers[0] = session.LateNAKer{Addr: netip.MustParseAddrPort("10.0.0.7:7500"), NAKs: 10}
	st.LateNAKers[3] = session.LateNAKer{Addr: netip.MustParseAddrPort("10.0.0.9:7500"), NAKs: 2}
	h, err := Handler(NewSenderCollector(fakeSender{st}))
	if err != nil {
		t.Fatal(err)
	}
	fams := scrape(t, h)
	id := "1.2.3.4.5.6.1000"
	if got := value(t, fams, "relmcast_sender_naks_outside_window_total", "source", id); got != 12 {
		t.Errorf("outside window %v", got)
	}
	if a, b := value(t, fams, "relmcast_sender_ncfs_dropped_total", "source", id), value(t, fams, "relmcast_sender_ncfs_eliminated_total", "source", id); a != 4 || b != 5 {
		t.Errorf("NCFs dropped %v, eliminated %v", a, b)
	}
	if n := len(fams["relmcast_sender_late_naker_naks_total"].Metric); n != 2 {
		t.Errorf("%d late NAKer series; want 2", n)
	}
	for addr, want := range map[string]float64{"10.0.0.7:7500": 10, "10.0.0.9:7500": 2} {
		if got := value(t, fams, "relmcast_sender_late_naker_naks_total", "source", id, "naker", addr); got != want {
			t.Errorf("late NAKer %s: %v; want %v", addr, got, want)
		}
	}
}

// TestServe: the endpoint on a real socket (run inside scripts/netns).
func TestServe(t *testing.T) {
	srv, err := Serve("127.0.0.1:0", NewSenderCollector(fakeSender{}))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + srv.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("content type %q", ct)
	}
	fams := parse(t, resp.Body)
	if _, ok := fams["relmcast_sender_messages_total"]; !ok {
		t.Errorf("no relmcast_sender_messages_total in %d families", len(fams))
	}
	if err := srv.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if _, err := Serve("127.0.0.1:notaport"); err == nil {
		t.Error("Serve on a bad address succeeded")
	}
}

// fakeReceiver is a ReceiverStats with given sources.
type fakeReceiver struct{ srcs []mcast.SourceStats }

func (f fakeReceiver) Stats() mcast.ReceiverStats {
	var st mcast.ReceiverStats
	st.NAKsLimited = 6
	return st
}

func (f fakeReceiver) Sources() []mcast.SourceStats { return f.srcs }

// TestSameTSIRestart: while the old session of a sender restarted with
// the same TSI is still listed, the scrape holds one series per TSI, the
// new session's, and no error.
func TestSameTSIRestart(t *testing.T) {
	id := mcast.SourceID{GSI: [6]byte{1, 2, 3, 4, 5, 6}, Port: 1000}
	other := mcast.SourceID{GSI: [6]byte{1, 2, 3, 4, 5, 6}, Port: 2000}
	src := func(id mcast.SourceID, msgs uint64, state mcast.SourceState) mcast.SourceStats {
		s := mcast.SourceStats{Source: id}
		s.TSI, s.Messages, s.State = wire.TSI(id), msgs, state
		return s
	}
	f := fakeReceiver{[]mcast.SourceStats{
		src(id, 500, mcast.SourceClosing), src(other, 7, mcast.SourceActive), src(id, 3, mcast.SourceActive),
	}}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewReceiverCollector(f))
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, fam := range fams {
		if fam.GetName() == "relmcast_receiver_naks_limited_total" && fam.Metric[0].Counter.GetValue() != 6 {
			t.Errorf("NAKs limited %v", fam.Metric[0].Counter.GetValue())
		}
		if fam.GetName() != "relmcast_receiver_source_messages_total" {
			continue
		}
		got := map[string]float64{}
		for _, m := range fam.Metric {
			got[m.Label[0].GetValue()] = m.Counter.GetValue()
		}
		if len(got) != 2 || got[id.String()] != 3 || got[other.String()] != 7 {
			t.Errorf("messages %v", got)
		}
	}
}
