package main

import (
	"github.com/relmcast/relmcast/mcast"
	"github.com/relmcast/relmcast/mcast/zmqpgm"
)

// zmqDecoders decodes the ZeroMQ framing of each source (--zmq): one
// zmqpgm.Decoder per source, reset at the source's loss events (ZeroMQ's
// own rule: drop the partial message, resume where the next one begins).
type zmqDecoders struct {
	decs    map[mcast.SourceID]*zmqpgm.Decoder
	deliver func([][]byte) // bound once: feeding allocates nothing

	ev    *mcast.Event // the PGM message being decoded
	first uint32       // seq of the PGM message where the next message began

	lastSrc mcast.SourceID
	lastDec *zmqpgm.Decoder

	apdus, dropped, malformed uint64
}

func (z *zmqDecoders) init(deliver func([][]byte)) {
	z.decs = make(map[mcast.SourceID]*zmqpgm.Decoder)
	z.deliver = func(frames [][]byte) {
		deliver(frames)
		z.first = z.ev.Seq // what follows began in this PGM message
	}
}

func (z *zmqDecoders) decoder(id mcast.SourceID) *zmqpgm.Decoder {
	if z.lastDec != nil && z.lastSrc == id {
		return z.lastDec
	}
	d := z.decs[id]
	if d == nil {
		d = new(zmqpgm.Decoder)
		z.decs[id] = d
	}
	z.lastSrc, z.lastDec = id, d
	return d
}

// feed decodes one PGM message of a source; each ZeroMQ message it
// completes goes to the function given to init.
func (z *zmqDecoders) feed(ev *mcast.Event) error {
	d := z.decoder(ev.Source)
	z.apdus++
	z.ev = ev
	if !d.Partial() {
		z.first = ev.Seq
	}
	err := d.Feed(ev.Data, z.deliver)
	if err != nil {
		z.malformed++
	}
	return err
}

// event follows a source's other events: a loss drops its partial message
// and waits for the next message start; a gone source, or the session a
// restart replaces, is forgotten.
func (z *zmqDecoders) event(ev *mcast.Event) {
	switch ev.Kind {
	case mcast.EventLoss:
		if d := z.decs[ev.Source]; d != nil {
			if d.Partial() {
				z.dropped++
			}
			d.Reset()
		}
	case mcast.EventSourceGone:
		z.forget(ev.Source)
	case mcast.EventSourceRestart:
		z.forget(ev.Prev)
	}
}

func (z *zmqDecoders) forget(id mcast.SourceID) {
	if d := z.decs[id]; d != nil && z.lastDec == d {
		z.lastDec = nil
	}
	delete(z.decs, id)
}
