package playground

import (
	"cmp"
	"fmt"
	"html/template"
	"slices"

	"github.com/warden-sec/warden/internal/slackfake"
)

// State is what the page shows one person, as HTML fragments by pane:
// people, channel, dm, security, modal, scenario and problems.
type State struct {
	As              string                   `json:"as"`
	Panes           map[string]template.HTML `json:"panes"`
	ScenarioRunning bool                     `json:"scenarioRunning"`
	// Scenario is the progress of the current (or last) play.
	Scenario []StepState `json:"scenario"`
}

type feedVM struct {
	Messages []template.HTML
	Empty    string
}

type personVM struct {
	Person
	Current bool
	DMs     int
}

// item is a message or an ephemeral reply, before rendering.
type item struct {
	vm     messageVM
	text   string
	blocks []byte
}

// State renders everything person as sees.
func (s *Server) State(as string) (State, error) {
	st := State{As: as, Panes: map[string]template.HTML{}}
	dm := s.slack.DMChannel(as)
	var err error
	set := func(pane string, h template.HTML, e error) {
		if e != nil && err == nil {
			err = fmt.Errorf("pane %s: %w", pane, e)
		}
		st.Panes[pane] = h
	}

	people := make([]personVM, 0, len(s.cfg.People))
	for _, p := range s.cfg.People {
		people = append(people, personVM{Person: p, Current: p.ID == as, DMs: len(s.slack.Messages(s.slack.DMChannel(p.ID)))})
	}
	h, e := s.rend.exec("people", people)
	set("people", h, e)

	ephemerals := s.slack.Ephemerals(as)
	for _, pane := range []struct{ name, channel, empty string }{
		{"channel", s.cfg.Channel, "Nothing here yet. Type a command below, e.g. help."},
		{"dm", dm, "No direct messages from Warden."},
		{"security", s.cfg.SecurityChannel, "No alerts."},
	} {
		h, e := s.feed(as, pane.channel, ephemerals, pane.empty)
		set(pane.name, h, e)
	}

	views := s.slack.Views()
	for i := len(views) - 1; i >= 0; i-- {
		v := views[i]
		if v.User != as || v.Type != "modal" || !v.Open {
			continue
		}
		modal, e := s.rend.renderModal(v.ID, v.Title, v.Submit, v.Close, v.Blocks, v.Errors)
		set("modal", modal, e)
		break
	}
	if _, ok := st.Panes["modal"]; !ok {
		st.Panes["modal"] = ""
	}

	s.mu.Lock()
	steps := slices.Clone(s.scenario)
	problems := slices.Clone(s.problems)
	st.ScenarioRunning = s.running
	st.Scenario = steps
	s.mu.Unlock()
	h, e = s.rend.exec("scenario", map[string]any{"Steps": steps})
	set("scenario", h, e)
	h, e = s.rend.exec("problems", problems)
	set("problems", h, e)
	return st, err
}

// feed renders a channel as person as sees it: its messages (ephemeral ones
// only when shown to them) and their ephemeral replies there, oldest first.
func (s *Server) feed(as, channel string, ephemerals []slackfake.Ephemeral, empty string) (template.HTML, error) {
	var items []item
	for _, m := range s.slack.Messages(channel) {
		if m.Ephemeral && m.User != as {
			continue
		}
		items = append(items, item{
			vm:   messageVM{Kind: "message", Channel: m.Channel, TS: m.TS, Author: "Warden", Ephemeral: m.Ephemeral, Edited: m.Edits > 0, Thread: m.ThreadTS != ""},
			text: m.Text, blocks: m.Blocks,
		})
	}
	for _, e := range ephemerals {
		if e.Channel != channel {
			continue
		}
		items = append(items, item{
			vm:   messageVM{Kind: "ephemeral", Channel: e.Channel, TS: e.TS, Author: "Warden", Ephemeral: true},
			text: e.Text, blocks: e.Blocks,
		})
	}
	slices.SortStableFunc(items, func(a, b item) int { return cmp.Compare(tsKey(a.vm.TS), tsKey(b.vm.TS)) })
	f := feedVM{Empty: empty}
	for _, it := range items {
		h, err := s.rend.renderMessage(it.vm, it.text, it.blocks)
		if err != nil {
			return "", err
		}
		f.Messages = append(f.Messages, h)
	}
	return s.rend.exec("feed", f)
}

// tsKey orders Slack timestamps of different integer widths.
func tsKey(ts string) string { return fmt.Sprintf("%024s", ts) }
