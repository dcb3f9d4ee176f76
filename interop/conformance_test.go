package interop

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relmcast/relmcast/internal/lossy"
	"github.com/relmcast/relmcast/internal/udp"
	"github.com/relmcast/relmcast/internal/wire"
	"github.com/relmcast/relmcast/mcast"
)

// TestWireConformance captures what our Sender and Receiver put on the
// wire (on lo, inside the namespace) while they exchange every packet
// type we send: SPM, ODATA, fragmented ODATA, RDATA, NAK with a list,
// NCF, SPMR and SPM with OPT_FIN. tshark's PGM dissector, with checksum
// validation on, must decode it all with no malformed packet and no bad
// checksum, and see each type. tshark 4.0's dissector has no SPMR (type
// 0x0C is not in its table: it leaves the packet undissected), so the
// SPMRs are checked here, byte by byte, with a checksum of our own.
//
// A control packet with a wrong checksum goes into the capture too: the
// dissector must flag it, and only it.
func TestWireConformance(t *testing.T) {
	setup(t)
	tsharkBin := need(t, "tshark", "tshark")
	const port = 7616
	pcap := filepath.Join(t.TempDir(), "pgm.pcapng")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// Capture, printing each packet's UDP port as it comes, so that we
	// know when the capture is live: probes to port+1 until one shows.
	capture := start(t, "tshark capture", exec.CommandContext(ctx, tsharkBin, "-i", "lo",
		"-f", fmt.Sprintf("udp port %d or udp port %d", port, port+1),
		"-w", pcap, "-P", "-l", "-T", "fields", "-e", "udp.dstport"), nil)
	probe, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port + 1})
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	for live := false; !live; {
		probe.Write([]byte("probe"))
		l, ok := capture.next(100 * time.Millisecond)
		live = ok && l == fmt.Sprint(port+1)
		if ctx.Err() != nil {
			t.Fatalf("the capture never saw a probe: %s", capture.stderr.String())
		}
	}

	// The control packet: an SPM with a wrong checksum.
	control := wire.Packet{Type: wire.TypeSPM, SPort: 1, DPort: port, GSI: wire.GSI{0xba, 0xd0, 0xc5, 0x00, 0x00, 0x01},
		PathNLA: netip.MustParseAddr("127.0.0.9")}
	bad, err := control.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	bad[6] ^= 0x55
	ctl, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	ctl.Write(bad)
	ctl.Close()

	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	g := netip.AddrPortFrom(group, port)
	// UDP GSO off: a capture holds a GSO send as one frame, of which
	// tshark would decode only the first datagram.
	ucfg := udp.Config{Group: g, Interface: lo, Addr: netip.MustParseAddr("127.0.0.1"), Loopback: true, NoGSO: true}
	rtr, err := udp.OpenReceiver(ucfg)
	if err != nil {
		t.Fatal(err)
	}
	// The receiver loses the three start SPMs and those of the first 40 ms
	// after the first ODATA, heartbeats included (so it meets the source
	// by its data and, SPMRDelay (25 ms) later, asks for an SPM: SPMR), and
	// the first transmission of ODATA 5..9 (one NAK with a list of four
	// more, an NCF, RDATA), counted from the first (senders start at a
	// random number).
	var first uint32
	var firstAt time.Time
	firstSeen := false
	drop := lossy.Config{Loss: 1, Filter: func(b []byte) bool {
		switch {
		case len(b) < 24 || wire.Type(b[4]) != wire.TypeSPM && wire.Type(b[4]) != wire.TypeODATA:
			return false
		case wire.Type(b[4]) == wire.TypeSPM:
			return !firstSeen || time.Since(firstAt) < 40*time.Millisecond
		}
		q := binary.BigEndian.Uint32(b[16:])
		if !firstSeen {
			// the first ODATA comes first: nothing is lost before it here
			first, firstAt, firstSeen = q, time.Now(), true
		}
		return q-first >= 5 && q-first <= 9
	}}
	r, err := mcast.Listen(g, &mcast.Config{Transport: lossy.Wrap(rtr, drop)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	str, err := udp.OpenSource(ucfg)
	if err != nil {
		t.Fatal(err)
	}
	s, err := mcast.NewSender(g, &mcast.Config{Transport: str, Linger: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	const count = 20
	for i := range count {
		m := []byte(fmt.Sprintf("message %d", i))
		if i == 12 { // 3 fragments: the 13th to 15th ODATA
			m = make([]byte, 2*s.MaxPacketPayload())
		}
		if err := s.Send(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		time.Sleep(200 * time.Millisecond) // the repairs first
		s.Close()                          // FIN
	}()
	evs := receiveAll(t, r, 30*time.Second)
	<-closed
	if n := len(evs); n != count+2 {
		t.Fatalf("%d events, want %d messages between source new and gone", n, count)
	}
	st, rst := s.Stats(), r.Stats()
	time.Sleep(100 * time.Millisecond) // the last packets into the capture
	capture.cmd.Process.Signal(syscall.SIGINT)
	if err := capture.wait(10 * time.Second); err != nil {
		t.Fatalf("tshark capture: %v", err)
	}

	tshark := func(args ...string) []string {
		t.Helper()
		args = append([]string{"-r", pcap, "-o", fmt.Sprintf("pgm.udp.encap_ucast_port:%d", port),
			"-o", fmt.Sprintf("pgm.udp.encap_mcast_port:%d", port), "-o", "pgm.check_checksum:TRUE"}, args...)
		out, err := exec.CommandContext(ctx, tsharkBin, args...).Output()
		if err != nil {
			t.Fatalf("tshark %v: %v", args, err)
		}
		return strings.Split(strings.TrimSpace(string(out)), "\n")
	}
	// Expert infos: malformed packets, bad checksums, anything odd.
	for _, l := range tshark("-Y", "_ws.expert", "-T", "fields", "-E", "separator=|", "-e", "frame.number", "-e", "pgm.hdr.gsi", "-e", "_ws.expert.message") {
		f := strings.Split(l, "|")
		if len(f) == 3 && f[1] == "bad0c5000001" && strings.Contains(strings.ToLower(f[2]), "checksum") {
			t.Logf("control packet flagged as it must be: frame %s: %s", f[0], f[2])
			control.Type = 0xFF // seen
			continue
		}
		t.Errorf("tshark's expert info on our packets: %s", l)
	}
	if control.Type != 0xFF {
		t.Errorf("tshark did not flag the control packet with a wrong checksum: the oracle is blind")
	}

	// What each of our packets is.
	seen := map[string]int{}
	for _, l := range tshark("-Y", fmt.Sprintf("udp.dstport == %d", port), "-T", "fields", "-E", "separator=|", "-e", "frame.number", "-e", "pgm.hdr.type",
		"-e", "pgm.genopts.type", "-e", "pgm.hdr.gsi", "-e", "udp.payload", "-e", "pgm.hdr.opts") {
		f := strings.Split(l, "|")
		if len(f) != 6 {
			t.Fatalf("tshark line %q", l)
		}
		if f[3] == "bad0c5000001" {
			continue // the control packet
		}
		opts := strings.Split(f[2], ",")
		kind := map[string]string{"0x00": "SPM", "0x04": "ODATA", "0x05": "RDATA", "0x08": "NAK", "0x0a": "NCF"}[f[1]]
		switch {
		case f[1] == "":
			kind = checkSPMR(t, f[0], f[4], port, s.Source())
		case kind == "":
			t.Errorf("frame %s: unexpected PGM type %s", f[0], f[1])
		case kind == "SPM" && f[5] != "0x00":
			kind = "SPM with options"
		case kind == "ODATA" && slices.Contains(opts, "0x01"):
			kind = "fragmented ODATA"
		case (kind == "NAK" || kind == "NCF") && slices.Contains(opts, "0x02"):
			kind += " with a list"
		}
		seen[kind]++
	}
	// tshark names OPT_FIN only in its packet tree, with no field.
	var fins int
	for _, l := range tshark("-Y", fmt.Sprintf("udp.dstport == %d && pgm.hdr.type == 0 && pgm.hdr.opts.opt == 1", port), "-V") {
		if strings.TrimSpace(l) == "Option: Fin, Length: 4" {
			fins++
		}
	}
	if fins != seen["SPM with options"] {
		t.Errorf("%d SPMs with options, %d of them with OPT_FIN: we send no other option in SPMs", seen["SPM with options"], fins)
	}
	seen["SPM with OPT_FIN"] = fins
	delete(seen, "SPM with options")
	t.Logf("tshark decoded, with no malformed packet and no bad checksum: %v", seen)
	t.Logf("sender: %d ODATA, %d RDATA, %d NCF, %d SPM; receiver: %d NAKs, %d SPMRs", st.ODATA, st.RDATA, st.NCF, st.SPM, rst.NAKPackets, rst.SPMRs)
	for _, want := range []string{"SPM", "ODATA", "fragmented ODATA", "RDATA", "NAK with a list", "NCF with a list", "SPMR", "SPM with OPT_FIN"} {
		if seen[want] == 0 {
			t.Errorf("no %s in the capture", want)
		}
	}
}

// checkSPMR checks a datagram that tshark left undissected: it must be an
// SPMR (16 bytes: our header only) to source src, with a valid checksum
// (RFC 1071, computed here on its own).
func checkSPMR(t *testing.T, frame, payload string, port uint16, src mcast.SourceID) string {
	t.Helper()
	b, err := hex.DecodeString(payload)
	if err != nil || len(b) != 16 {
		t.Errorf("frame %s: undissected payload %q is not a 16-byte SPMR", frame, payload)
		return "?"
	}
	sum := uint32(0)
	for i := 0; i < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	for sum > 0xFFFF {
		sum = sum&0xFFFF + sum>>16
	}
	tsi := wire.TSI(src)
	switch {
	case wire.Type(b[4]) != wire.TypeSPMR || b[5] != 0 || binary.BigEndian.Uint16(b[14:]) != 0:
		t.Errorf("frame %s: % x is not an SPMR", frame, b)
	case sum != 0xFFFF:
		t.Errorf("frame %s: SPMR with a bad checksum: % x", frame, b)
	case binary.BigEndian.Uint16(b) != port || binary.BigEndian.Uint16(b[2:]) != tsi.Port || [6]byte(b[8:14]) != tsi.GSI:
		t.Errorf("frame %s: SPMR with the wrong ports or GSI (want %d -> %d, %v): % x", frame, port, tsi.Port, tsi.GSI, b)
	}
	return "SPMR"
}
