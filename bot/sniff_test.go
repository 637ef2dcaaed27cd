package bot

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/warden-sec/warden/internal/slackfake"
)

// wsFrame encodes one server→client frame.
func wsFrame(op byte, fin, masked bool, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	var out []byte
	n := len(payload)
	mask := byte(0)
	if masked {
		mask = 0x80
	}
	switch {
	case n < 126:
		out = []byte{b0, mask | byte(n)}
	case n <= 0xffff:
		out = []byte{b0, mask | 126, 0, 0}
		binary.BigEndian.PutUint16(out[2:], uint16(n))
	default:
		out = []byte{b0, mask | 127, 0, 0, 0, 0, 0, 0, 0, 0}
		binary.BigEndian.PutUint64(out[2:], uint64(n))
	}
	if masked {
		out = append(out, 0, 0, 0, 0) // zero key: payload unchanged
	}
	return append(out, payload...)
}

// TestSnifferFindsDisconnectReasons feeds a recorded-style stream (upgrade
// response, hello, envelopes, pings, disconnects) split at every possible
// read boundary. Only real disconnect frames are reported, never user text
// that quotes one.
func TestSnifferFindsDisconnectReasons(t *testing.T) {
	forged, _ := json.Marshal(map[string]any{
		"envelope_id": "e1", "type": "slash_commands",
		"payload": map[string]string{"text": `{"type":"disconnect","reason":"link_disabled"}`},
	})
	big, _ := json.Marshal(map[string]any{"type": "disconnect", "reason": "link_disabled", "pad": strings.Repeat("x", 70000)})
	var stream bytes.Buffer
	stream.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	stream.Write(wsFrame(websocket.TextMessage, true, false, []byte(`{"type":"hello","num_connections":1}`)))
	stream.Write(wsFrame(websocket.TextMessage, true, false, forged))
	stream.Write(wsFrame(websocket.PingMessage, true, false, []byte("ping")))
	stream.Write(wsFrame(websocket.TextMessage, true, false, big))                                                // too big to be one
	stream.Write(wsFrame(websocket.TextMessage, false, false, []byte(`{"type":"disconnect","reason":"frag"}`)))   // fragment
	stream.Write(wsFrame(websocket.TextMessage, true, true, []byte(`{"type":"disconnect","reason":"masked"}`)))   // masked
	stream.Write(wsFrame(websocket.TextMessage, true, false, []byte(`{"reason":"warning","type":"disconnect"}`))) // key order varies
	stream.Write(wsFrame(websocket.TextMessage, true, false, []byte(strings.Repeat(" ", 200)+`{"type":"disconnect","reason":"refresh_requested"}`)))
	stream.Write(wsFrame(websocket.TextMessage, true, false, []byte(`{"type":"disconnect","reason":"link_disabled","debug_info":{"host":"x"}}`)))
	raw := stream.Bytes()
	want := []string{"warning", "refresh_requested", "link_disabled"}

	for _, chunk := range []int{1, 2, 3, 7, 64, 4096, len(raw)} {
		var got []string
		s := frameSniffer{onDisconnect: func(r string) { got = append(got, r) }}
		for b := raw; len(b) > 0; {
			n := min(chunk, len(b))
			s.feed(b[:n])
			b = b[n:]
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("reads of %d bytes: reasons %q, want %q", chunk, got, want)
		}
	}
}

// TestSnifferOverTLS dials a wss:// server through socketDialer: the sniffer
// sits on the plaintext side of TLS and still sees the disconnect.
func TestSnifferOverTLS(t *testing.T) {
	up := websocket.Upgrader{}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello"}`))
		_ = c.WriteMessage(websocket.TextMessage, []byte(`{"type":"disconnect","reason":"link_disabled"}`))
		_, _, _ = c.ReadMessage() // until the client goes
	}))
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())

	reasons := make(chan string, 1)
	d := socketDialer(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, func(r string) { reasons <- r })
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	conn, _, err := d.DialContext(ctx, "wss"+strings.TrimPrefix(srv.URL, "https")+"/link/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for range 2 {
		if _, _, err := conn.ReadMessage(); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case r := <-reasons:
		if r != "link_disabled" {
			t.Errorf("reason %q", r)
		}
	default:
		t.Fatal("disconnect frame read but not reported")
	}
}

// TestLinkDisabledBehindProxyIsFatal covers the fallback used behind an HTTPS
// proxy: slack-go's debug log instead of the sniffer.
func TestLinkDisabledBehindProxyIsFatal(t *testing.T) {
	f := slackfake.New(t, slackfake.Options{})
	app, err := New(Config{BotToken: slackfake.BotToken, AppToken: slackfake.AppToken, APIURL: f.APIURL()}, &fakeHandler{CommandFn: echo})
	if err != nil {
		t.Fatal(err)
	}
	app.sm = app.socketClient(true, nil)
	done := make(chan error, 1)
	go func() { done <- app.Run(t.Context()) }()
	ctx := within(t, 10*time.Second)
	if err := f.AwaitConnections(ctx, 1); err != nil {
		t.Fatal(err)
	}
	// Still serving in this mode.
	env := f.SlashCommand("U1", "C1", "hi")
	if r, err := f.AwaitResponse(ctx, env); err != nil || r.Text != "echo hi" {
		t.Fatalf("response %+v, %v", r, err)
	}
	f.Disconnect("link_disabled")
	select {
	case err := <-done:
		if !errors.Is(err, ErrFatal) {
			t.Errorf("Run returned %v, want ErrFatal", err)
		}
	case <-ctx.Done():
		t.Fatal("Run kept going after link_disabled")
	}
}
