package bot

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/warden-sec/warden/commands"
	"github.com/warden-sec/warden/internal/slackfake"
)

// BenchmarkAckLatency sends bursts of 2,000 slash commands through the fake
// Slack and the real slack-go client, and reports the envelope send→ack
// latency (p50_ms, p99_ms, max_ms) and commands answered per second
// (cmds/s: first send to last response_url answer). The queue is sized to
// hold a whole burst, so every command is answered by the handler.
func BenchmarkAckLatency(b *testing.B) {
	const burst = 2000
	f := slackfake.New(b, slackfake.Options{})
	h := &fakeHandler{CommandFn: func(_ context.Context, r commands.Request) commands.Reply {
		return commands.Reply{Text: "ok " + r.Text}
	}}
	start(b, f, h, func(c *Config) { c.Queue = burst })

	var lat []time.Duration
	var answered time.Duration
	seen := 0
	b.ResetTimer()
	for range b.N {
		began := time.Now()
		envs := make([]string, burst)
		for i := range burst {
			envs[i] = f.SlashCommand("U0BENCH", "C0BENCH", "list")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		next := 0 // envs[:next] are answered; keeps the check cheap
		err := f.Await(ctx, func() bool {
			for next < len(envs) && len(f.Responses(envs[next])) > 0 {
				next++
			}
			return next == len(envs)
		})
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		answered += time.Since(began)
		acks := f.Acks()
		for _, a := range acks[seen:] {
			lat = append(lat, a.Acked.Sub(a.Sent))
		}
		seen = len(acks)
	}
	b.StopTimer()
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(lat[len(lat)/2]), "p50_ms")
	b.ReportMetric(ms(lat[len(lat)*99/100]), "p99_ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "max_ms")
	b.ReportMetric(float64(burst*b.N)/answered.Seconds(), "cmds/s")
}
