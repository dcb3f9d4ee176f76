// Package metrics exposes the stats of an mcast Sender or Receiver to
// Prometheus. Its collectors read a snapshot (Stats, Sources) at scrape
// time: nothing is updated per message, so metrics cost the data path
// nothing. Names follow Prometheus conventions: the relmcast_ prefix,
// _total on counters, base units (_bytes, _seconds); per-source receiver
// metrics carry the label source="GSI.port" (the TSI as OpenPGM prints
// it), sender metrics the sender's own source label.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/relmcast/relmcast/mcast"
)

// ReceiverStats is what a receiver collector reads: *mcast.Receiver.
type ReceiverStats interface {
	Stats() mcast.ReceiverStats
	Sources() []mcast.SourceStats
}

// SenderStats is what a sender collector reads: *mcast.Sender.
type SenderStats interface {
	Stats() mcast.SenderStats
}

// metric is one metric read from a snapshot of type S.
type metric[S any] struct {
	desc *prometheus.Desc
	typ  prometheus.ValueType
	val  func(*S) float64
}

func counter[S any](name, help string, labels []string, val func(*S) float64) metric[S] {
	return metric[S]{prometheus.NewDesc(name, help, labels, nil), prometheus.CounterValue, val}
}

func gauge[S any](name, help string, labels []string, val func(*S) float64) metric[S] {
	return metric[S]{prometheus.NewDesc(name, help, labels, nil), prometheus.GaugeValue, val}
}

func u(v uint64) float64 { return float64(v) }

var (
	src = []string{"source"}

	// Receiver totals, all sources together (sources come and go; these
	// never go back).
	rxTotals = []metric[mcast.ReceiverStats]{
		counter("relmcast_receiver_packets_total", "PGM packets handled.", nil, func(s *mcast.ReceiverStats) float64 { return u(s.Packets) }),
		counter("relmcast_receiver_messages_total", "Messages delivered, all sources.", nil, func(s *mcast.ReceiverStats) float64 { return u(s.Messages) }),
		counter("relmcast_receiver_message_bytes_total", "Bytes of the messages delivered, all sources.", nil, func(s *mcast.ReceiverStats) float64 { return u(s.Bytes) }),
		counter("relmcast_receiver_loss_events_total", "Loss events delivered, all sources.", nil, func(s *mcast.ReceiverStats) float64 { return u(s.LossEvents) }),
		counter("relmcast_receiver_lost_packets_total", "Sequence numbers reported lost, all sources.", nil, func(s *mcast.ReceiverStats) float64 { return u(s.Lost) }),
		counter("relmcast_receiver_nak_packets_total", "NAK packets sent, all sources.", nil, func(s *mcast.ReceiverStats) float64 { return u(s.NAKPackets) }),
		counter("relmcast_receiver_repairs_total", "Holes filled by RDATA, all sources.", nil, func(s *mcast.ReceiverStats) float64 { return u(s.Repairs) }),
		counter("relmcast_receiver_fec_recovered_total", "Holes filled by FEC decoding, all sources.", nil, func(s *mcast.ReceiverStats) float64 { return u(s.FECRecovered) }),
		counter("relmcast_receiver_spmrs_total", "SPMRs sent.", nil, func(s *mcast.ReceiverStats) float64 { return u(s.SPMRs) }),
		counter("relmcast_receiver_naks_limited_total", "NAK packets not sent: over NAKRate (NAKed again at the next retry).", nil, func(s *mcast.ReceiverStats) float64 { return u(s.NAKsLimited) }),
		counter("relmcast_receiver_malformed_packets_total", "Datagrams that were not valid PGM.", nil, func(s *mcast.ReceiverStats) float64 { return u(s.Malformed) }),
		counter("relmcast_receiver_dropped_packets_total", "PGM packets ignored: wrong port, stale, unknown type.", nil, func(s *mcast.ReceiverStats) float64 { return u(s.Dropped) }),
		counter("relmcast_receiver_sources_refused_total", "Packets of new sources refused: MaxSources confirmed sources.", nil, func(s *mcast.ReceiverStats) float64 { return u(s.SourcesDropped) }),
		counter("relmcast_receiver_sources_evicted_total", "Unconfirmed sources evicted for new ones.", nil, func(s *mcast.ReceiverStats) float64 { return u(s.SourcesEvicted) }),
		gauge("relmcast_receiver_sources", "Sources tracked now.", nil, func(s *mcast.ReceiverStats) float64 { return float64(s.Sources) }),
	}

	// Per source on a receiver.
	rxSource = []metric[mcast.SourceStats]{
		counter("relmcast_receiver_source_messages_total", "Messages delivered.", src, func(s *mcast.SourceStats) float64 { return u(s.Messages) }),
		counter("relmcast_receiver_source_message_bytes_total", "Bytes of the messages delivered.", src, func(s *mcast.SourceStats) float64 { return u(s.Bytes) }),
		counter("relmcast_receiver_source_loss_events_total", "Loss events delivered.", src, func(s *mcast.SourceStats) float64 { return u(s.LossEvents) }),
		counter("relmcast_receiver_source_lost_packets_total", "Sequence numbers reported lost.", src, func(s *mcast.SourceStats) float64 { return u(s.Lost) }),
		counter("relmcast_receiver_source_nak_packets_total", "NAK packets sent, selective and parity.", src, func(s *mcast.SourceStats) float64 { return u(s.NAKPackets) }),
		counter("relmcast_receiver_source_naks_total", "Sequence numbers NAKed selectively, repeats included.", src, func(s *mcast.SourceStats) float64 { return u(s.NAKs) }),
		counter("relmcast_receiver_source_parity_naks_total", "Transmission groups NAKed with parity NAKs.", src, func(s *mcast.SourceStats) float64 { return u(s.ParityNAKs) }),
		counter("relmcast_receiver_source_naks_suppressed_total", "Holes whose NAK another receiver's NAK (confirmed by an NCF) made unneeded.", src, func(s *mcast.SourceStats) float64 { return u(s.NAKsSuppressed) }),
		counter("relmcast_receiver_source_ncfs_total", "NCF packets received.", src, func(s *mcast.SourceStats) float64 { return u(s.NCFs) }),
		counter("relmcast_receiver_source_repairs_total", "Holes filled by RDATA.", src, func(s *mcast.SourceStats) float64 { return u(s.Repairs) }),
		counter("relmcast_receiver_source_fec_recovered_total", "Holes filled by FEC decoding.", src, func(s *mcast.SourceStats) float64 { return u(s.FECRecovered) }),
		counter("relmcast_receiver_source_duplicates_total", "Data packets already held or delivered.", src, func(s *mcast.SourceStats) float64 { return u(s.Duplicates) }),
		gauge("relmcast_receiver_source_window_packets", "Sequence numbers the receive window holds now.", src, func(s *mcast.SourceStats) float64 { return float64(s.WindowPackets) }),
		gauge("relmcast_receiver_source_window_max_packets", "Sequence numbers the receive window may hold.", src, func(s *mcast.SourceStats) float64 { return float64(s.WindowMaxPackets) }),
		gauge("relmcast_receiver_source_window_bytes", "Payload buffer bytes the receive window holds now.", src, func(s *mcast.SourceStats) float64 { return float64(s.WindowBytes) }),
		gauge("relmcast_receiver_source_window_max_bytes", "Payload buffer bytes the receive window may hold.", src, func(s *mcast.SourceStats) float64 { return float64(s.WindowMaxBytes) }),
		gauge("relmcast_receiver_source_last_seen_timestamp_seconds", "When the source's last packet arrived, Unix time.", src, func(s *mcast.SourceStats) float64 { return unix(s.LastSeen) }),
		gauge("relmcast_receiver_source_first_seen_timestamp_seconds", "When the source's first packet arrived, Unix time.", src, func(s *mcast.SourceStats) float64 { return unix(s.FirstSeen) }),
	}
	rxSourceInfo = prometheus.NewDesc("relmcast_receiver_source_info",
		"A source on the group: its unicast address and state (active, finishing, closing); always 1.",
		[]string{"source", "addr", "state"}, nil)
	rxRepairLatency = prometheus.NewDesc("relmcast_receiver_source_repair_latency_seconds",
		"Time from the packet that revealed a hole to the repair (RDATA or FEC) that filled it.", src, nil)

	// Sender.
	txMetrics = []metric[mcast.SenderStats]{
		counter("relmcast_sender_messages_total", "Messages sent (their last packet as ODATA).", src, func(s *mcast.SenderStats) float64 { return u(s.Messages) }),
		counter("relmcast_sender_message_bytes_total", "Bytes of the messages sent.", src, func(s *mcast.SenderStats) float64 { return u(s.MessageBytes) }),
		counter("relmcast_sender_odata_packets_total", "ODATA packets sent.", src, func(s *mcast.SenderStats) float64 { return u(s.ODATA) }),
		counter("relmcast_sender_odata_bytes_total", "PGM bytes (UDP payload) of the ODATA packets sent.", src, func(s *mcast.SenderStats) float64 { return u(s.ODATABytes) }),
		counter("relmcast_sender_rdata_packets_total", "RDATA packets sent: repairs and parity.", src, func(s *mcast.SenderStats) float64 { return u(s.RDATA) }),
		counter("relmcast_sender_rdata_bytes_total", "PGM bytes (UDP payload) of the RDATA packets sent.", src, func(s *mcast.SenderStats) float64 { return u(s.RDATABytes) }),
		counter("relmcast_sender_parity_proactive_packets_total", "Pro-active FEC parity packets sent (also counted as RDATA).", src, func(s *mcast.SenderStats) float64 { return u(s.ParityProactive) }),
		counter("relmcast_sender_parity_ondemand_packets_total", "On-demand FEC parity packets sent (also counted as RDATA).", src, func(s *mcast.SenderStats) float64 { return u(s.ParityOnDemand) }),
		counter("relmcast_sender_spm_packets_total", "SPM packets sent.", src, func(s *mcast.SenderStats) float64 { return u(s.SPM) }),
		counter("relmcast_sender_ncf_packets_total", "NCF packets sent.", src, func(s *mcast.SenderStats) float64 { return u(s.NCF) }),
		counter("relmcast_sender_ncfs_dropped_total", "NCFs not sent: the NCF queue was full (NAK flood).", src, func(s *mcast.SenderStats) float64 { return u(s.NCFsDropped) }),
		counter("relmcast_sender_ncfs_eliminated_total", "NAKed sequence numbers not confirmed again: confirmed less than NAKElim ago.", src, func(s *mcast.SenderStats) float64 { return u(s.NCFsEliminated) }),
		counter("relmcast_sender_nak_packets_total", "Valid selective NAK packets received.", src, func(s *mcast.SenderStats) float64 { return u(s.NAKs) }),
		counter("relmcast_sender_naks_total", "Sequence numbers named by the NAKs received.", src, func(s *mcast.SenderStats) float64 { return u(s.NAKSeqs) }),
		counter("relmcast_sender_parity_nak_packets_total", "Valid parity NAK packets received.", src, func(s *mcast.SenderStats) float64 { return u(s.ParityNAKs) }),
		counter("relmcast_sender_naks_eliminated_total", "NAKed sequence numbers already queued for repair or repaired within NAKElim.", src, func(s *mcast.SenderStats) float64 { return u(s.NAKsEliminated) }),
		counter("relmcast_sender_naks_outside_window_total", "NAKed sequence numbers no longer (or not yet) in the window: a receiver cannot keep up.", src, func(s *mcast.SenderStats) float64 { return u(s.NAKsOutsideWindow) }),
		counter("relmcast_sender_bad_naks_total", "NAKs dropped: wrong session, ports, NLA or list.", src, func(s *mcast.SenderStats) float64 { return u(s.BadNAKs) }),
		counter("relmcast_sender_spmrs_total", "Valid SPMRs received.", src, func(s *mcast.SenderStats) float64 { return u(s.SPMRs) }),
		gauge("relmcast_sender_window_packets", "Sent packets held for repair.", src, func(s *mcast.SenderStats) float64 { return float64(s.WindowPackets) }),
		gauge("relmcast_sender_window_max_packets", "Sent packets the window may hold.", src, func(s *mcast.SenderStats) float64 { return float64(s.WindowMaxPackets) }),
		gauge("relmcast_sender_window_bytes", "Payload bytes held for repair.", src, func(s *mcast.SenderStats) float64 { return float64(s.WindowBytes) }),
		gauge("relmcast_sender_window_max_bytes", "Payload bytes the window may hold.", src, func(s *mcast.SenderStats) float64 { return float64(s.WindowMaxBytes) }),
		gauge("relmcast_sender_queued_packets", "Packets accepted by Send, not yet sent (held by the rate limit).", src, func(s *mcast.SenderStats) float64 { return float64(s.Queued) }),
		gauge("relmcast_sender_repairs_queued", "Sequence numbers waiting for RDATA.", src, func(s *mcast.SenderStats) float64 { return float64(s.RepairsQueued) }),
		gauge("relmcast_sender_uptime_seconds", "Time since the sender started.", src, func(s *mcast.SenderStats) float64 { return s.Uptime.Seconds() }),
	}
	txLateNAKer = prometheus.NewDesc("relmcast_sender_late_naker_naks_total",
		"Sequence numbers no longer in the window NAKed by one receiver (the heaviest and latest few are kept).",
		[]string{"source", "naker"}, nil)
)

func unix(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

// receiverCollector is a prometheus.Collector over a receiver.
type receiverCollector struct{ r ReceiverStats }

// NewReceiverCollector returns a collector of r's totals and per-source
// metrics.
func NewReceiverCollector(r ReceiverStats) prometheus.Collector { return receiverCollector{r} }

func (c receiverCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range rxTotals {
		ch <- m.desc
	}
	for _, m := range rxSource {
		ch <- m.desc
	}
	ch <- rxSourceInfo
	ch <- rxRepairLatency
}

func (c receiverCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.r.Stats()
	for _, m := range rxTotals {
		ch <- prometheus.MustNewConstMetric(m.desc, m.typ, m.val(&st))
	}
	srcs := c.r.Sources()
	last := make(map[mcast.SourceID]int, len(srcs)) // each TSI's last entry
	for i := range srcs {
		last[srcs[i].Source] = i
	}
	for i, s := range srcs {
		if last[s.Source] != i {
			// A sender restarted with the same TSI: the old session is
			// listed until its last events are read. Series are per
			// TSI, so only the new one is shown (Prometheus takes its
			// counters starting over as a reset).
			continue
		}
		id := s.Source.String()
		for _, m := range rxSource {
			ch <- prometheus.MustNewConstMetric(m.desc, m.typ, m.val(&s), id)
		}
		ch <- prometheus.MustNewConstMetric(rxSourceInfo, prometheus.GaugeValue, 1, id, s.Addr.String(), s.State.String())
		ch <- latencyHistogram(rxRepairLatency, &s.RepairLatency, id)
	}
}

// latencyHistogram converts h to a Prometheus histogram in seconds.
func latencyHistogram(d *prometheus.Desc, h *mcast.LatencyHistogram, labels ...string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(mcast.LatencyBounds))
	var cum uint64
	for i, b := range mcast.LatencyBounds {
		cum += h.Counts[i]
		buckets[b.Seconds()] = cum
	}
	return prometheus.MustNewConstHistogram(d, h.Count, h.Sum.Seconds(), buckets, labels...)
}

// senderCollector is a prometheus.Collector over a sender.
type senderCollector struct{ s SenderStats }

// NewSenderCollector returns a collector of s's metrics.
func NewSenderCollector(s SenderStats) prometheus.Collector { return senderCollector{s} }

func (c senderCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range txMetrics {
		ch <- m.desc
	}
	ch <- txLateNAKer
}

func (c senderCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Stats()
	id := st.Source.String()
	for _, m := range txMetrics {
		ch <- prometheus.MustNewConstMetric(m.desc, m.typ, m.val(&st), id)
	}
	for _, n := range st.LateNAKers {
		if n.NAKs > 0 {
			ch <- prometheus.MustNewConstMetric(txLateNAKer, prometheus.CounterValue, float64(n.NAKs), id, n.Addr.String())
		}
	}
}

// Handler serves the metrics of cs, plus the Go runtime's and the
// process's, in the Prometheus exposition formats.
func Handler(cs ...prometheus.Collector) (http.Handler, error) {
	reg := prometheus.NewRegistry()
	cs = append(cs, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}), nil
}

// Server is a metrics endpoint: /metrics over HTTP.
type Server struct {
	ln   net.Listener
	srv  *http.Server
	done chan struct{}
}

// Serve listens on addr (host:port, e.g. 127.0.0.1:9464) and serves the
// metrics of cs on /metrics until Close.
func Serve(addr string, cs ...prometheus.Collector) (*Server, error) {
	h, err := Handler(cs...)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", h)
	s := &Server{
		ln:   ln,
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		s.srv.Serve(ln)
	}()
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops the server, waiting at most a second for scrapes in
// progress.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = s.srv.Close()
	}
	<-s.done
	return err
}
