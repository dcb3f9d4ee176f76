package main

import (
	"encoding/base64"
	"strconv"
	"unicode/utf8"

	"github.com/relmcast/relmcast/mcast"
)

// jsonWriter formats events as JSON lines into one reused buffer.
type jsonWriter struct {
	buf  []byte
	srcs map[mcast.SourceID]string // SourceID.String, cached
}

func (j *jsonWriter) init() { j.srcs = make(map[mcast.SourceID]string) }

// source returns id's text, cached per source.
func (j *jsonWriter) source(id mcast.SourceID) string {
	s, ok := j.srcs[id]
	if !ok {
		if len(j.srcs) >= 4096 {
			clear(j.srcs)
		}
		s = id.String()
		j.srcs[id] = s
	}
	return s
}

// append formats ev as one JSON object and a newline. The result is valid
// until the next call.
func (j *jsonWriter) append(ev *mcast.Event) []byte {
	b := append(j.buf[:0], `{"type":"`...)
	b = append(b, ev.Kind.String()...)
	b = append(b, `","source":"`...)
	b = append(b, j.source(ev.Source)...)
	b = append(b, '"')
	if ev.Addr.IsValid() {
		b = append(b, `,"addr":"`...)
		b = ev.Addr.AppendTo(b)
		b = append(b, '"')
	}
	switch ev.Kind {
	case mcast.EventData:
		b = appendSeqs(b, ev)
		b = append(b, `,"len":`...)
		b = strconv.AppendInt(b, int64(len(ev.Data)), 10)
		if utf8.Valid(ev.Data) {
			b = append(b, `,"data":`...)
			b = appendString(b, ev.Data)
		} else {
			b = append(b, `,"data_b64":"`...)
			b = base64.StdEncoding.AppendEncode(b, ev.Data)
			b = append(b, '"')
		}
	case mcast.EventLoss:
		b = appendSeqs(b, ev)
		b = append(b, `,"lost":`...)
		b = strconv.AppendUint(b, ev.Lost, 10)
		b = append(b, `,"reason":"`...)
		b = append(b, ev.LossReason.String()...)
		b = append(b, '"')
	case mcast.EventSourceGone:
		b = append(b, `,"reason":"`...)
		b = append(b, ev.GoneReason.String()...)
		b = append(b, '"')
	case mcast.EventSourceRestart:
		b = append(b, `,"prev":"`...)
		b = append(b, j.source(ev.Prev)...)
		b = append(b, '"')
	}
	b = append(b, "}\n"...)
	j.buf = b
	return b
}

// appendFrames formats a ZeroMQ message (--zmq) of n bytes in all,
// decoded from ev's source, from the PGM message with sequence number
// first to ev, as one JSON object and a newline. The result is valid until
// the next call.
func (j *jsonWriter) appendFrames(ev *mcast.Event, first uint32, frames [][]byte, n int) []byte {
	b := append(j.buf[:0], `{"type":"data","source":"`...)
	b = append(b, j.source(ev.Source)...)
	b = append(b, '"')
	if ev.Addr.IsValid() {
		b = append(b, `,"addr":"`...)
		b = ev.Addr.AppendTo(b)
		b = append(b, '"')
	}
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, uint64(first), 10)
	b = append(b, `,"last_seq":`...)
	b = strconv.AppendUint(b, uint64(ev.LastSeq), 10)
	b = append(b, `,"len":`...)
	b = strconv.AppendInt(b, int64(n), 10)
	text := true
	for _, f := range frames {
		text = text && utf8.Valid(f)
	}
	if text {
		b = append(b, `,"frames":[`...)
	} else {
		b = append(b, `,"frames_b64":[`...)
	}
	for i, f := range frames {
		if i > 0 {
			b = append(b, ',')
		}
		if text {
			b = appendString(b, f)
		} else {
			b = append(b, '"')
			b = base64.StdEncoding.AppendEncode(b, f)
			b = append(b, '"')
		}
	}
	b = append(b, "]}\n"...)
	j.buf = b
	return b
}

func appendSeqs(b []byte, ev *mcast.Event) []byte {
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, uint64(ev.Seq), 10)
	b = append(b, `,"last_seq":`...)
	return strconv.AppendUint(b, uint64(ev.LastSeq), 10)
}

const hex = "0123456789abcdef"

// appendString appends s, valid UTF-8, as a JSON string. It escapes
// quotes, backslashes, control characters and U+2028/U+2029 (which some
// JavaScript parsers take as line ends).
func appendString(b []byte, s []byte) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(s[i:])
			if r != '\u2028' && r != '\u2029' {
				i += size
				continue
			}
			b = append(b, s[start:i]...)
			b = append(b, `\u202`...)
			b = append(b, hex[r&0xf])
			i += size
			start = i
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
