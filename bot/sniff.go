package bot

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"time"

	"github.com/gorilla/websocket"
)

// Why a sniffer: slack-go v0.36.0 reconnects after every Socket Mode
// "disconnect" frame and never says why (reference §2.4), but
// "link_disabled" (Socket Mode switched off for the app) must stop Warden.
// The reason is visible in slack-go's debug log, but debug mode re-encodes
// every frame and every ack for logging, which doubled the burst ack latency
// (BenchmarkAckLatency p99 ≈ 80–110 ms against ≈ 35–45 ms without). So the
// bot dials the socket itself (socketmode.OptionDialer) and reads along on
// the plaintext side of the connection: after the HTTP upgrade response it
// parses the server's WebSocket frame headers (RFC 6455 §5.2), keeps only
// small, whole, uncompressed text frames, and reports the reason of a frame
// whose top-level JSON is {"type":"disconnect",…}. User text cannot forge
// one: inside an envelope it is a JSON string, never a top-level object.
// slack-go still does all reading; the sniffer only looks at bytes in passing.
//
// With an HTTPS proxy configured the dialer cannot be replaced (the proxy
// CONNECT happens before TLS, inside gorilla), so the bot falls back to the
// debug log (linkwatch.go).

const maxSniffedFrame = 4096 // disconnect frames are ~100 bytes

// sniffConn passes everything through and feeds what it reads to sniff.
type sniffConn struct {
	net.Conn
	s frameSniffer
}

func (c *sniffConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.s.feed(p[:n])
	return n, err
}

// frameSniffer follows the server→client byte stream of a WebSocket
// connection. It is driven by one reader goroutine.
type frameSniffer struct {
	onDisconnect func(reason string)

	upgraded  bool     // the HTTP response headers are behind us
	crlf      int      // how much of "\r\n\r\n" has matched
	hdr       [14]byte // frame header being collected
	hn, hneed int
	remaining uint64 // payload bytes left in the current frame
	keep      bool   // collect this frame's payload
	payload   []byte
}

func (s *frameSniffer) feed(b []byte) {
	for len(b) > 0 {
		if !s.upgraded {
			b = s.skipHTTP(b)
			continue
		}
		if s.remaining == 0 && s.hneed == 0 || s.hn < s.hneed {
			b = s.header(b)
			continue
		}
		k := min(uint64(len(b)), s.remaining)
		if s.keep {
			s.payload = append(s.payload, b[:k]...)
		}
		s.remaining -= k
		b = b[k:]
		if s.remaining == 0 {
			s.endFrame()
		}
	}
}

// skipHTTP consumes the upgrade response up to its blank line.
func (s *frameSniffer) skipHTTP(b []byte) []byte {
	const end = "\r\n\r\n"
	for i, c := range b {
		switch {
		case c == end[s.crlf]:
			s.crlf++
		case c == '\r':
			s.crlf = 1
		default:
			s.crlf = 0
		}
		if s.crlf == len(end) {
			s.upgraded = true
			return b[i+1:]
		}
	}
	return nil
}

// header collects a frame header; once complete, it sets up the payload.
func (s *frameSniffer) header(b []byte) []byte {
	if s.hneed == 0 {
		s.hneed = 2
	}
	for len(b) > 0 && s.hn < s.hneed {
		s.hdr[s.hn] = b[0]
		s.hn++
		b = b[1:]
		if s.hn == 2 {
			switch s.hdr[1] & 0x7f {
			case 126:
				s.hneed += 2
			case 127:
				s.hneed += 8
			}
			if s.hdr[1]&0x80 != 0 {
				s.hneed += 4 // masked (not expected from a server)
			}
		}
	}
	if s.hn < s.hneed {
		return b
	}
	var n uint64
	switch l := s.hdr[1] & 0x7f; l {
	case 126:
		n = uint64(binary.BigEndian.Uint16(s.hdr[2:4]))
	case 127:
		n = binary.BigEndian.Uint64(s.hdr[2:10])
	default:
		n = uint64(l)
	}
	fin, rsv, op, masked := s.hdr[0]&0x80 != 0, s.hdr[0]&0x70, s.hdr[0]&0x0f, s.hdr[1]&0x80 != 0
	s.keep = fin && rsv == 0 && op == websocket.TextMessage && !masked && n <= maxSniffedFrame
	s.payload = s.payload[:0]
	s.remaining = n
	if n == 0 {
		s.endFrame()
	}
	return b
}

func (s *frameSniffer) endFrame() {
	if s.keep && bytes.Contains(s.payload, []byte(`"disconnect"`)) {
		var f struct {
			Type   string `json:"type"`
			Reason string `json:"reason"`
		}
		if json.Unmarshal(s.payload, &f) == nil && f.Type == "disconnect" && s.onDisconnect != nil {
			s.onDisconnect(f.Reason)
		}
	}
	s.hn, s.hneed, s.remaining, s.keep = 0, 0, 0, false
}

// socketDialer is the gorilla dialer slack-go uses for Socket Mode: the same
// settings as slack-go's own (45 s handshake, 32 KiB write buffer, so an ack
// is one frame), TCP keepalives, and a sniffer on every connection.
func socketDialer(tlsConfig *tls.Config, onDisconnect func(string)) *websocket.Dialer {
	nd := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	wrap := func(c net.Conn) net.Conn {
		return &sniffConn{Conn: c, s: frameSniffer{onDisconnect: onDisconnect}}
	}
	return &websocket.Dialer{
		HandshakeTimeout: 45 * time.Second,
		WriteBufferSize:  32 * 1024,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := nd.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return wrap(c), nil
		},
		NetDialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			raw, err := nd.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				raw.Close()
				return nil, fmt.Errorf("socket address: %w", err)
			}
			cfg := &tls.Config{MinVersion: tls.VersionTLS12}
			if tlsConfig != nil {
				cfg = tlsConfig.Clone()
			}
			if cfg.ServerName == "" {
				cfg.ServerName = host
			}
			tc := tls.Client(raw, cfg)
			if err := tc.HandshakeContext(ctx); err != nil {
				raw.Close()
				return nil, fmt.Errorf("tls handshake: %w", err)
			}
			return wrap(tc), nil
		},
	}
}
