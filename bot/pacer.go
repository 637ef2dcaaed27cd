package bot

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"golang.org/x/time/rate"
)

const (
	channelBurst      = 3    // messages a quiet channel may send at once
	maxSendAttempts   = 4    // per paced call, counting the first
	maxPacedChannels  = 4096 // idle channel limiters are forgotten beyond this
	defaultRetryAfter = time.Second
)

// pacer spaces chat.postMessage and chat.update per channel (Slack allows
// about one message per second per channel, with short bursts). A 429 on one
// channel holds back only that channel; the others keep posting.
type pacer struct {
	rate  rate.Limit
	burst int

	mu    sync.Mutex
	chans map[string]*channelPace
}

type channelPace struct {
	lim       *rate.Limiter
	holdUntil time.Time // set by a 429's Retry-After
}

func newPacer(perSecond float64, burst int) *pacer {
	return &pacer{rate: rate.Limit(perSecond), burst: burst, chans: make(map[string]*channelPace)}
}

func (p *pacer) channel(id string) *channelPace {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.chans[id]
	if ok {
		return c
	}
	if len(p.chans) >= maxPacedChannels {
		p.forgetIdleLocked(time.Now())
	}
	c = &channelPace{lim: rate.NewLimiter(p.rate, p.burst)}
	p.chans[id] = c
	return c
}

// forgetIdleLocked drops channels that are neither held nor short of tokens:
// a new limiter for them would behave the same.
func (p *pacer) forgetIdleLocked(now time.Time) {
	for id, c := range p.chans {
		if now.After(c.holdUntil) && c.lim.TokensAt(now) >= float64(p.burst) {
			delete(p.chans, id)
		}
	}
}

func (p *pacer) hold(c *channelPace, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if until := time.Now().Add(d); until.After(c.holdUntil) {
		c.holdUntil = until
	}
}

func (p *pacer) wait(ctx context.Context, c *channelPace) error {
	p.mu.Lock()
	until := c.holdUntil
	p.mu.Unlock()
	if d := time.Until(until); d > 0 {
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
	return c.lim.Wait(ctx)
}

// do runs send for channel when the channel's pace allows, and again after
// the Retry-After of a 429, up to maxSendAttempts times.
func (p *pacer) do(ctx context.Context, channel string, send func(context.Context) error) error {
	c := p.channel(channel)
	for attempt := 1; ; attempt++ {
		if err := p.wait(ctx, c); err != nil {
			return fmt.Errorf("wait for channel pace: %w", err)
		}
		err := send(ctx)
		d, limited := retryAfter(err)
		if !limited || attempt == maxSendAttempts {
			return err
		}
		p.hold(c, d)
	}
}

// retryAfter reports whether err is Slack throttling the call, and for how long.
func retryAfter(err error) (time.Duration, bool) {
	if err == nil {
		return 0, false
	}
	if rl, ok := errors.AsType[*slack.RateLimitedError](err); ok {
		return max(rl.RetryAfter, 100*time.Millisecond), true
	}
	if sc, ok := errors.AsType[slack.StatusCodeError](err); ok && sc.Code == 429 {
		return defaultRetryAfter, true
	}
	return 0, false
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
