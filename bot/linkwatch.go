package bot

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
)

// linkWatch collects the reasons of Socket Mode disconnect frames, from the
// socket sniffer (sniff.go) or, when an HTTPS proxy rules the sniffer out,
// from slack-go's debug output. slack-go v0.36.0 handles every disconnect the
// same way: it reconnects and never tells its consumer why (reference §2.4).
// Slack's link_disabled means Socket Mode was switched off for the app, so
// reconnecting is pointless. In debug mode, runRequestHandler logs every
// frame as
//
//	Received WebSocket message: <redacted JSON>
//
// (socketmode/socket_mode_managed_conn.go). linkWatch is always the OptionLog
// logger: it looks for a disconnect frame in those lines, reports
// link_disabled once, logs the other reasons at debug, and routes the rest of
// slack-go's chatter to slog at debug, minus per-frame lines (they carry
// message content).
type linkWatch struct {
	log      *slog.Logger
	once     sync.Once
	disabled chan struct{} // closed when link_disabled is seen
}

const frameLinePrefix = "Received WebSocket message: "

func newLinkWatch(log *slog.Logger) *linkWatch {
	return &linkWatch{log: log, disabled: make(chan struct{})}
}

// Output implements slack-go's logger interface.
func (w *linkWatch) Output(_ int, s string) error {
	if frame, ok := strings.CutPrefix(s, frameLinePrefix); ok {
		// Cheap test first: this runs for every frame.
		if strings.Contains(frame, `"disconnect"`) {
			w.frame(frame)
		}
		return nil
	}
	if !w.log.Enabled(context.Background(), slog.LevelDebug) || chatty(s) {
		return nil
	}
	w.log.Debug("slack-go", "line", strings.TrimSpace(s))
	return nil
}

func (w *linkWatch) frame(frame string) {
	var f struct {
		Type   string `json:"type"`
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(frame)), &f); err != nil || f.Type != "disconnect" {
		return
	}
	w.report(f.Reason)
}

// report records the reason of a disconnect frame, however it was seen.
func (w *linkWatch) report(reason string) {
	w.log.Debug("slack: asked to reconnect", "reason", reason)
	if reason == "link_disabled" {
		w.once.Do(func() { close(w.disabled) })
	}
}

// chatty reports per-frame and per-ack lines, too many and too revealing to
// forward even at debug.
func chatty(s string) bool {
	for _, p := range []string{
		"Starting to receive message",
		"Finished to receive message",
		"Scheduling Socket Mode response",
		"Sending Socket Mode response",
		"Finished sending Socket Mode response",
		"WebSocket ping message received",
	} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
