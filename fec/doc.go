// Package fec is PGM forward error correction (RFC 3208 §12) with the
// Reed–Solomon mathematics of OpenPGM 5.3 (research/openpgm.md §8): the
// sender adds parity packets to groups of original data packets, and a
// receiver rebuilds up to as many lost originals of a group as it has
// parity packets for, without waiting for a NAK round trip.
//
// It is sans-IO: no sockets, goroutines, locks or clock. Code is immutable
// and safe for concurrent use; Encoder and Decoder belong to one goroutine
// (the session loop). The package makes no compatibility promise: its API
// serves the session core.
//
// # Transmission groups
//
// A transmission group (TG) is k consecutive data sequence numbers, k a
// power of two in 2..128 that the source announces in the OPT_PARITY_PRM
// option of its SPMs. Groups are aligned in sequence space: the group of
// sqn starts at tg_sqn = sqn &^ (k-1) (Code.Group) and sqn is original
// number sqn & (k-1) in it (Code.Index). Alignment holds across the 32-bit
// wrap. OpenPGM starts its sequence numbers at 0, so every group is whole;
// a sender that starts elsewhere leaves its first group unprotected. There
// is no variable group size (OPT_CURR_TGSIZE): OpenPGM never implemented it.
//
// # Parity packets and their index
//
// Parity packet h of a group (0 <= h < Code.MaxParity() = min(k, 255-k))
// is an RDATA with OPT_PARITY (0x80) in the header options and sequence
// number tg_sqn | h. The receiver takes h from those low bits, never from
// the order in which parity packets arrive (OpenPGM does the latter and
// decodes wrongly when a parity packet is lost, §8.5 item 6). Its payload
// is row h of the code applied to the group's k originals: RS(255, k) over
// GF(2^8)/0x11D with Rizzo's systematic Vandermonde generator, whose
// parity row h is v(α^(k+h-1)) · V_top^-1 (§8.7; the tests check the rows
// against the ones OpenPGM prints). Any k of a group's originals and
// parity packets rebuild all of its originals.
//
// Originals of different lengths are zero-padded to L, the longest TSDU
// of the group. When the lengths differ, each padded original is followed
// by its length as a u16 in little-endian ("host") order, the parity
// covers L+2 bytes and carries OPT_VAR_PKTLEN (0x40); the Decoder reads
// the rebuilt original's length from there (§8.6). Zero-length TSDUs are
// fine.
//
// # Fragments
//
// When any original of a group carries OPT_FRAGMENT, its 12 value bytes
// (first sqn, offset, APDU length, in network order: option bytes 4..15)
// are coded along with the payload, zeros standing in for originals
// without one, and the parity packet carries OPT_LENGTH plus an
// OPT_FRAGMENT whose fields hold the parity of those bytes (Parity.Fragment;
// meaningless until decoded, which is why internal/wire does not check
// them on parity packets). An original sent with an all-zero OPT_FRAGMENT
// could not be told from one without, so Encoder and Decoder refuse it;
// real fragments always have a non-zero APDU length. OpenPGM codes its
// fragment option misaligned (§8.5 item 5: its encoder takes 10 bytes from
// 3 bytes into the option value, its decoder 13 bytes from offset 0), so
// fragmented groups could not interoperate even if the rest did.
//
// # OpenPGM's FEC does not work on the wire
//
// OpenPGM 5.3.128 is broken in every FEC packet it sends (research §8.5):
// it sends one parity packet however many are asked for, leaves the parity
// RDATA's ports unwritten (receivers drop it) and its checksum wrong,
// crashes on parity NAKs in ZeroMQ's configuration, misaligns the fragment
// option, and assigns parity rows by arrival order. ZeroMQ never enables
// FEC. So no OpenPGM peer exchanges working FEC, and we do not expect to
// interoperate on FEC: this package uses OpenPGM's mathematics and packet
// layout so that a fixed OpenPGM could, and is tested against its matrix
// vectors, but only our own senders and receivers are tested together.
// Non-FEC traffic stays fully OpenPGM-compatible either way.
//
// # Partial groups at a pause or close
//
// A group gets parity only once its k originals are sent. If the source
// pauses or closes mid-group, the simplest correct flush is to complete
// the group with empty ODATA packets: Encoder.Pending says how many, the
// sender sends them through its normal path (they are real, zero-length
// data packets with the next sequence numbers, repaired by NAK like any
// other), and the group's parity follows as usual. Parity over a partial
// group (k' < k) is not offered: without OPT_CURR_TGSIZE a receiver cannot
// know k', and the group's later originals would contradict it. Costs of
// padding: up to k-1 small packets, and a PGM receiver, OpenPGM included,
// delivers each as an empty message. So the recommendation is to pad only
// at Close (or an explicit flush), and to let NAK repair cover the tail of
// a burst otherwise.
//
// # Using it: the sender
//
// One Code per k, one Encoder per source for pro-active parity, and
// Code.Parity for on-demand parity rebuilt from the transmit window:
//
//	code, _ := fec.NewCode(16)                       // OPT_PARITY_PRM GroupSize 16
//	enc, _ := fec.NewEncoder(code, maxTSDU, proactive) // rows 0..proactive-1
//
//	// After queueing each ODATA (sqn, payload, fragment):
//	err := enc.Add(sqn, fec.Original{TSDU: payload, HasFragment: hasFrag, Fragment: fec.Fragment(frag)})
//	// err == fec.ErrSequence: this group goes unprotected; not fatal.
//	if enc.Complete() {
//		for h := range enc.Rows() {
//			p, _ := enc.Parity(scratch, h)
//			// queue RDATA: Seq p.Seq, Options OptParity (| OptVarPktLen if
//			// p.VarPktLen), HasFragment p.HasFragment, Fragment
//			// wire.Fragment(p.Fragment), Payload p.Payload (copied by Append)
//		}
//	}
//
//	// Parity NAK (Options&OptParity) with Seq tg|(n-1): send n more parity
//	// packets of that group, h continuing from those already sent (h <
//	// code.MaxParity()), each from the k originals in the window:
//	p, err := code.Parity(scratch, code.Group(seq), h, originals)
//
// The SPMs then carry OPT_PARITY_PRM {Proactive, OnDemand, GroupSize: k},
// NAKs with OptParity are NCF'd with OptParity set (research §8.4), and a
// parity NAK for a group no longer whole in the window should be ignored.
//
// # Using it: the receiver
//
// One Decoder per source, built when its SPM announces a group size (and
// rebuilt if it changes):
//
//	dec, _ := fec.NewDecoder(code, fec.DecoderConfig{MaxTSDU: maxTSDU, Groups: 32})
//
//	// A parity packet must never reach the receive window: its Seq is
//	// that of an original. Route on OptParity first.
//	if p.Options&wire.OptParity != 0 {
//		rec, err = dec.AddParity(rec[:0], fec.Parity{Seq: p.Seq, Payload: p.Payload,
//			VarPktLen: p.Options&wire.OptVarPktLen != 0,
//			HasFragment: p.HasFragment, Fragment: fec.Fragment(p.Fragment)})
//	} else {
//		// ... insert into the receive window as today, then:
//		rec, err = dec.AddOriginal(rec[:0], p.Seq, fec.Original{TSDU: p.Payload,
//			HasFragment: p.HasFragment, Fragment: fec.Fragment(p.Fragment)})
//	}
//	// err: count and drop the packet; never fatal.
//	for _, r := range rec {
//		// r is original r.Seq as if an RDATA had brought it: check its
//		// fragment like a parsed one, insert it (copy r.TSDU: it lives
//		// until the next Decoder call) and tell the NAK tracker.
//	}
//
// With on-demand parity, a receiver may NAK a group with holes that is
// older than the group of the lead for dec.Need(tg) packets (NAK Seq
// tg|(n-1), OptParity) instead of NAKing each hole.
//
// Memory is bounded by DecoderConfig.Groups slots of k×(MaxTSDU+14)
// bytes; packets of groups older than the newest Groups are ignored
// (DecoderStats.Stale), so Groups should cover the parity repair time at
// the source's packet rate.
//
// # Implementation notes
//
// The bulk arithmetic is klauspost/reedsolomon's SIMD code, driven with
// OpenPGM's matrix; the tests check byte-for-byte agreement with
// reedsolomon.New(k, m, WithCustomMatrix(rows)).Encode, the mapping of
// research §8.8. The Encoder folds each original into its parity rows as
// it is sent (progressive), which measured faster than copying the
// originals and encoding at the end (k=16, 1400 bytes, one row: 0.62 µs
// against 1.08 µs per group, and Encode allocates twice per call). It
// calls reedsolomon's slice multiply-add per row, as EncodeIdx does for
// small shards; EncodeIdx itself switches for larger shards (9000 bytes
// here) to a path that allocates 6 times per call and was slower. The
// Decoder does not use Reconstruct either, which allocates on every call
// (6 times with its inversion cache, 74 at k=16 without) and caches one
// inverse per erasure pattern without bound; it solves the e×e system of
// the erasures itself (syndromes, then an e×e inversion in scratch space)
// with the same slice kernels, as fast or faster and allocation-free.
package fec
