package storage

import (
	"bytes"
	"time"
	"unicode/utf8"
)

// chainFields are the parts of a stored record the chain checks need.
type chainFields struct {
	v        uint64
	seq      uint64
	prevHash []byte // hex, aliasing the stored value
	hash     []byte // hex, aliasing the stored value
}

// parseCanonical is Verify's fast path. It checks that val is exactly in
// the layout json.Marshal gives a storedRecord,
//
//	{"v":1,"seq":N,"time":"…","actor":"…","action":"…"[,"subject":"…"]
//	 [,"run_id":"…"][,"provider":"…"][,"outcome":"…"][,"details":{"k":"v",…}],
//	 "prev_hash":"…","hash":"…"}
//
// with every string free of escapes and valid UTF-8 and the time a valid
// RFC 3339 timestamp, and returns the chain fields without allocating.
// When it returns ok, json.Unmarshal would decode val into a storedRecord
// with the same V, Seq, PrevHash and Hash (TestParseCanonicalAgreesWithJSON).
// When it does not (e.g. a string needed escaping), the caller falls back
// to json.Unmarshal, so this parser only has to be right, not complete.
func parseCanonical(val []byte) (f chainFields, ok bool) {
	p := canonParser{b: val}
	if !p.lit(`{"v":`) {
		return f, false
	}
	if f.v, ok = p.uint(); !ok {
		return f, false
	}
	if !p.lit(`,"seq":`) {
		return f, false
	}
	if f.seq, ok = p.uint(); !ok {
		return f, false
	}
	if !p.lit(`,"time":`) {
		return f, false
	}
	ts, ok := p.str()
	if !ok {
		return f, false
	}
	var t time.Time
	if t.UnmarshalText(ts) != nil {
		return f, false
	}
	if !p.lit(`,"actor":`) || !p.skipStr() || !p.lit(`,"action":`) || !p.skipStr() {
		return f, false
	}
	for _, opt := range []string{`,"subject":`, `,"run_id":`, `,"provider":`, `,"outcome":`} {
		if p.lit(opt) && !p.skipStr() {
			return f, false
		}
	}
	if p.lit(`,"details":{`) {
		if !p.lit(`}`) {
			for {
				if !p.skipStr() || !p.lit(`:`) || !p.skipStr() {
					return f, false
				}
				if p.lit(`}`) {
					break
				}
				if !p.lit(`,`) {
					return f, false
				}
			}
		}
	}
	if !p.lit(`,"prev_hash":`) {
		return f, false
	}
	if f.prevHash, ok = p.str(); !ok {
		return f, false
	}
	if !p.lit(`,"hash":`) {
		return f, false
	}
	if f.hash, ok = p.str(); !ok {
		return f, false
	}
	if !p.lit(`}`) || len(p.b) != 0 {
		return f, false
	}
	return f, true
}

type canonParser struct{ b []byte }

// lit consumes s when the input starts with it.
func (p *canonParser) lit(s string) bool {
	if len(p.b) < len(s) || string(p.b[:len(s)]) != s {
		return false
	}
	p.b = p.b[len(s):]
	return true
}

// uint consumes a JSON non-negative integer as json.Marshal writes it.
func (p *canonParser) uint() (uint64, bool) {
	i := 0
	var n uint64
	for i < len(p.b) && p.b[i] >= '0' && p.b[i] <= '9' {
		d := uint64(p.b[i] - '0')
		if n > (1<<64-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
		i++
	}
	if i == 0 || (i > 1 && p.b[0] == '0') {
		return 0, false
	}
	p.b = p.b[i:]
	return n, true
}

// str consumes a JSON string that needs no unescaping and returns its
// contents.
func (p *canonParser) str() ([]byte, bool) {
	if len(p.b) == 0 || p.b[0] != '"' {
		return nil, false
	}
	end := bytes.IndexByte(p.b[1:], '"')
	if end < 0 {
		return nil, false
	}
	s := p.b[1 : 1+end]
	for _, c := range s {
		if c < 0x20 || c == '\\' {
			return nil, false
		}
	}
	if !utf8.Valid(s) {
		return nil, false
	}
	p.b = p.b[2+end:]
	return s, true
}

func (p *canonParser) skipStr() bool {
	_, ok := p.str()
	return ok
}
