package bot

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/warden-sec/warden/commands"
)

const (
	directoryTTL  = 5 * time.Minute
	directorySize = 4096 // entries per cache
)

// ErrNotFound is wrapped by the Directory methods when Slack knows no such
// user or group, and by UserEmail when the profile has no email.
var ErrNotFound = errors.New("not found")

// UserEmail returns the email on a user's Slack profile (users.info), cached
// for a few minutes. It returns an error wrapping ErrNotFound for an unknown
// user or a profile without an email.
func (a *App) UserEmail(ctx context.Context, userID string) (string, error) {
	if v, ok := a.emails.get(userID); ok {
		return v, nil
	}
	u, err := a.api.GetUserInfoContext(ctx, userID)
	if err != nil {
		return "", fmt.Errorf("users.info: %w", notFound(err))
	}
	if u.Profile.Email == "" {
		return "", fmt.Errorf("users.info: no email on profile: %w", ErrNotFound)
	}
	a.emails.put(userID, u.Profile.Email)
	return u.Profile.Email, nil
}

// UserByEmail returns the Slack user id for an email (users.lookupByEmail),
// cached for a few minutes. It returns an error wrapping ErrNotFound when no
// user has that email.
func (a *App) UserByEmail(ctx context.Context, email string) (string, error) {
	key := strings.ToLower(strings.TrimSpace(email))
	if v, ok := a.byEmail.get(key); ok {
		return v, nil
	}
	u, err := a.api.GetUserByEmailContext(ctx, email)
	if err != nil {
		return "", fmt.Errorf("users.lookupByEmail: %w", notFound(err))
	}
	a.byEmail.put(key, u.ID)
	return u.ID, nil
}

// GroupMembers returns the user ids in a user group (usergroups.users.list),
// cached for a few minutes. It returns an error wrapping ErrNotFound for an
// unknown group.
func (a *App) GroupMembers(ctx context.Context, groupID string) ([]string, error) {
	if v, ok := a.groups.get(groupID); ok {
		return slices.Clone(v), nil
	}
	ids, err := a.api.GetUserGroupMembersContext(ctx, groupID)
	if err != nil {
		return nil, fmt.Errorf("usergroups.users.list: %w", notFound(err))
	}
	a.groups.put(groupID, slices.Clone(ids))
	return ids, nil
}

// notFound adds ErrNotFound to Slack's "no such thing" answers.
func notFound(err error) error {
	if e, ok := errors.AsType[slack.SlackErrorResponse](err); ok {
		switch e.Err {
		case "user_not_found", "users_not_found", "no_such_subteam", "subteam_not_found", "channel_not_found":
			return fmt.Errorf("%w: %w", ErrNotFound, err)
		}
	}
	return err
}

// ttlCache is a small map whose entries expire. When full, it forgets expired
// entries first and then the ones closest to expiry.
type ttlCache[V any] struct {
	ttl  time.Duration
	size int
	now  func() time.Time

	mu sync.Mutex
	m  map[string]ttlEntry[V]
}

type ttlEntry[V any] struct {
	v       V
	expires time.Time
}

func newTTLCache[V any](ttl time.Duration, size int) *ttlCache[V] {
	return &ttlCache[V]{ttl: ttl, size: size, now: time.Now, m: make(map[string]ttlEntry[V])}
}

func (c *ttlCache[V]) get(k string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok || !c.now().Before(e.expires) {
		var zero V
		return zero, false
	}
	return e.v, true
}

func (c *ttlCache[V]) put(k string, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if _, ok := c.m[k]; !ok && len(c.m) >= c.size {
		var oldest string
		var oldestAt time.Time
		for key, e := range c.m {
			if !now.Before(e.expires) {
				delete(c.m, key)
				continue
			}
			if oldest == "" || e.expires.Before(oldestAt) {
				oldest, oldestAt = key, e.expires
			}
		}
		if len(c.m) >= c.size {
			delete(c.m, oldest)
		}
	}
	c.m[k] = ttlEntry[V]{v: v, expires: now.Add(c.ttl)}
}

var _ commands.Directory = (*App)(nil)
