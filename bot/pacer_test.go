package bot

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/slack-go/slack"
)

// TestPacerSpacesOneChannel: a quiet channel may post a burst of 3, then one
// message a second.
func TestPacerSpacesOneChannel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPacer(1, channelBurst)
		start := time.Now()
		var at []time.Duration
		for range 6 {
			if err := p.do(t.Context(), "C1", func(context.Context) error {
				at = append(at, time.Since(start))
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		want := []time.Duration{0, 0, 0, time.Second, 2 * time.Second, 3 * time.Second}
		for i := range want {
			if at[i] != want[i] {
				t.Fatalf("send times %v, want %v", at, want)
			}
		}
	})
}

// TestPacerThrottledChannelDoesNotBlockOthers: while Slack throttles channel A
// (Retry-After 30 s), channel B keeps posting at once, and A's message goes
// out after the wait.
func TestPacerThrottledChannelDoesNotBlockOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPacer(1, channelBurst)
		start := time.Now()
		var mu sync.Mutex
		sent := map[string][]time.Duration{}
		throttled := 1
		send := func(ch string) func(context.Context) error {
			return func(context.Context) error {
				mu.Lock()
				defer mu.Unlock()
				if ch == "A" && throttled > 0 {
					throttled--
					return &slack.RateLimitedError{RetryAfter: 30 * time.Second}
				}
				sent[ch] = append(sent[ch], time.Since(start))
				return nil
			}
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			if err := p.do(t.Context(), "A", send("A")); err != nil {
				t.Error(err)
			}
		})
		synctest.Wait() // A is now held
		for range 3 {
			if err := p.do(t.Context(), "B", send("B")); err != nil {
				t.Fatal(err)
			}
		}
		mu.Lock()
		if got := sent["B"]; len(got) != 3 || got[2] != 0 {
			t.Errorf("channel B sent at %v while A was throttled; want 3 sends at 0s", got)
		}
		mu.Unlock()
		wg.Wait()
		if got := sent["A"]; len(got) != 1 || got[0] != 30*time.Second {
			t.Errorf("channel A sent at %v, want once at 30s (its Retry-After)", got)
		}
	})
}

// TestPacerGivesUpAfterBoundedAttempts: a channel throttled forever returns
// the rate-limit error after maxSendAttempts tries.
func TestPacerGivesUpAfterBoundedAttempts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPacer(1, channelBurst)
		calls := 0
		err := p.do(t.Context(), "C1", func(context.Context) error {
			calls++
			return &slack.RateLimitedError{RetryAfter: time.Second}
		})
		if _, ok := errors.AsType[*slack.RateLimitedError](err); !ok {
			t.Fatalf("err = %v, want the rate limit error", err)
		}
		if calls != maxSendAttempts {
			t.Errorf("%d attempts, want %d", calls, maxSendAttempts)
		}
	})
}

// TestPacerStopsWithContext: a held channel gives up when its context ends.
func TestPacerStopsWithContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPacer(1, channelBurst)
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		calls := 0
		err := p.do(ctx, "C1", func(context.Context) error {
			calls++
			return &slack.RateLimitedError{RetryAfter: time.Minute}
		})
		if !errors.Is(err, context.DeadlineExceeded) || calls != 1 {
			t.Errorf("err = %v after %d calls, want deadline exceeded after 1", err, calls)
		}
	})
}

func TestTTLCacheExpiresAndStaysBounded(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newTTLCache[string](time.Minute, 3)
	c.now = func() time.Time { return now }
	c.put("a", "1")
	if v, ok := c.get("a"); !ok || v != "1" {
		t.Fatalf("get(a) = %q, %v", v, ok)
	}
	now = now.Add(time.Minute)
	if _, ok := c.get("a"); ok {
		t.Error("entry still served after its TTL")
	}
	for _, k := range []string{"b", "c", "d", "e"} {
		now = now.Add(time.Second)
		c.put(k, k)
	}
	if len(c.m) > 3 {
		t.Errorf("cache holds %d entries, limit 3", len(c.m))
	}
	if _, ok := c.get("b"); ok {
		t.Error("oldest entry survived eviction")
	}
	if v, ok := c.get("e"); !ok || v != "e" {
		t.Error("newest entry was evicted")
	}
}
