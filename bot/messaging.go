package bot

import (
	"context"
	"errors"
	"fmt"

	"github.com/slack-go/slack"

	"github.com/warden-sec/warden/commands"
)

const maxRespondAttempts = 3 // response_url posts, counting the first

// ErrEmptyReply is returned when a reply has nothing to show.
var ErrEmptyReply = errors.New("empty reply")

// Post sends r to a channel with chat.postMessage and returns the message ts.
// Posts are paced per channel; a 429 delays only that channel and the post is
// retried a few times.
func (a *App) Post(ctx context.Context, channel string, r commands.Reply) (string, error) {
	opts, err := messageOptions(r)
	if err != nil {
		return "", fmt.Errorf("chat.postMessage: %w", err)
	}
	var ts string
	err = a.pacer.do(ctx, channel, func(ctx context.Context) error {
		var err error
		_, ts, err = a.api.PostMessageContext(ctx, channel, opts...)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("chat.postMessage: %w", err)
	}
	return ts, nil
}

// Update replaces the message at channel/ts with r (chat.update), paced like
// Post. The message is rebuilt whole: blocks not in r are removed.
func (a *App) Update(ctx context.Context, channel, ts string, r commands.Reply) error {
	opts, err := messageOptions(r)
	if err != nil {
		return fmt.Errorf("chat.update: %w", err)
	}
	err = a.pacer.do(ctx, channel, func(ctx context.Context) error {
		_, _, _, err := a.api.UpdateMessageContext(ctx, channel, ts, opts...)
		return err
	})
	if err != nil {
		return fmt.Errorf("chat.update: %w", err)
	}
	return nil
}

// DM opens (or finds) the direct message channel with a user and posts r in
// it. It returns the channel and ts, so the message can be updated later.
func (a *App) DM(ctx context.Context, userID string, r commands.Reply) (string, string, error) {
	channel, err := a.dmChannel(ctx, userID)
	if err != nil {
		return "", "", err
	}
	ts, err := a.Post(ctx, channel, r)
	if err != nil {
		return "", "", fmt.Errorf("dm: %w", err)
	}
	return channel, ts, nil
}

func messageOptions(r commands.Reply) ([]slack.MsgOption, error) {
	text, blocks := RenderText(r), Render(r)
	if text == "" && len(blocks) == 0 {
		return nil, ErrEmptyReply
	}
	opts := []slack.MsgOption{slack.MsgOptionText(text, false), slack.MsgOptionBlocks(blocks...)}
	if r.Meta != nil {
		opts = append(opts, slack.MsgOptionMetadata(slack.SlackMetadata{
			EventType:    metaEventType,
			EventPayload: map[string]any{"run_id": r.Meta.RunID, "key": r.Meta.Key},
		}))
	}
	return opts, nil
}

// metaEventType names Warden's message metadata.
const metaEventType = "warden_notice"

// findDepth is how many recent messages Find reads.
const findDepth = 100

// Find looks for the message Warden posted with meta in a channel (or in
// the DM with a user) among its latest messages, and returns its channel
// and ts; "" when there is none. It needs the history scopes.
func (a *App) Find(ctx context.Context, to string, meta commands.Meta) (string, string, error) {
	channel := to
	if isUser(to) {
		var err error
		if channel, err = a.dmChannel(ctx, to); err != nil {
			return "", "", err
		}
	}
	resp, err := a.api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{
		ChannelID: channel, Limit: findDepth, IncludeAllMetadata: true,
	})
	if err != nil {
		return "", "", fmt.Errorf("conversations.history: %w", err)
	}
	for _, m := range resp.Messages {
		md := m.Metadata
		if md.EventType == metaEventType && md.EventPayload["run_id"] == meta.RunID && md.EventPayload["key"] == meta.Key {
			return channel, m.Timestamp, nil
		}
	}
	return "", "", nil
}

// dmChannel opens (or remembers) the DM channel with a user.
func (a *App) dmChannel(ctx context.Context, userID string) (string, error) {
	if ch, ok := a.dms.get(userID); ok {
		return ch, nil
	}
	ch, _, _, err := a.api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{userID}})
	if err != nil {
		return "", fmt.Errorf("conversations.open: %w", notFound(err))
	}
	a.dms.put(userID, ch.ID)
	return ch.ID, nil
}

func isUser(id string) bool {
	return len(id) > 1 && (id[0] == 'U' || id[0] == 'W')
}

// respond answers an interaction through its response_url. These posts are
// not paced per channel (each URL has its own limit of 5 uses) but a 429 is
// retried after its Retry-After.
func (a *App) respond(ctx context.Context, responseURL string, r commands.Reply) error {
	if responseURL == "" {
		return errors.New("respond: no response_url")
	}
	text, blocks := RenderText(r), Render(r)
	if text == "" && len(blocks) == 0 {
		return fmt.Errorf("respond: %w", ErrEmptyReply)
	}
	kind := slack.ResponseTypeEphemeral
	if r.InChannel {
		kind = slack.ResponseTypeInChannel
	}
	opts := []slack.MsgOption{
		slack.MsgOptionResponseURL(responseURL, kind),
		slack.MsgOptionText(text, false),
		slack.MsgOptionBlocks(blocks...),
	}
	if r.ReplaceOriginal {
		opts = append(opts, slack.MsgOptionReplaceOriginal(responseURL))
	}
	for attempt := 1; ; attempt++ {
		_, _, err := a.api.PostMessageContext(ctx, "", opts...)
		d, limited := retryAfter(err)
		if !limited || attempt == maxRespondAttempts {
			if err != nil {
				return fmt.Errorf("respond: %w", err)
			}
			return nil
		}
		if err := sleep(ctx, d); err != nil {
			return fmt.Errorf("respond: %w", err)
		}
	}
}
