// Package crashtest holds the fakes Warden's crash tests kill a real warden
// process against: an Ory Kratos admin API that keeps state and counts every
// effective revocation, and a proxy in front of the fake Slack's Web API.
// Both take one-shot hooks that run at an exact point of one request (before
// it is applied, after it is applied, after its answer is written), so a test
// can stop or kill the process at that moment instead of hoping a sleep lands
// there.
package crashtest

import (
	"net/http"
	"net/url"
	"sync"
)

// Request is what a hook matches on.
type Request struct {
	// Method is the HTTP method at the Kratos fake, "POST" at the Slack proxy.
	Method string
	// Path is the URL path at the Kratos fake ("/admin/sessions"), the Web
	// API method at the Slack proxy ("chat.postMessage").
	Path string
	// Params are the query values, and at the Slack proxy the form or JSON
	// body fields as well.
	Params url.Values
}

// Hook runs callbacks at fixed points of the first request it matches. It
// fires once. Every callback is optional and runs on the request's goroutine,
// so it may block (to hold the request) or kill the client.
type Hook struct {
	// Match selects the request. nil matches nothing.
	Match func(Request) bool
	// Before runs before the request has any effect. Returning true drops the
	// request: it is never applied and the connection is aborted without an
	// answer.
	Before func() (drop bool)
	// AfterApply runs once the request's effect is applied (the fake changed
	// state, or Slack received the call) and before the answer is written.
	AfterApply func()
	// AfterWrite runs once the answer has been written and flushed.
	AfterWrite func()
}

// hooks is a list of one-shot hooks.
type hooks struct {
	mu   sync.Mutex
	list []*armed
}

type armed struct {
	Hook
	done chan struct{}
}

// add arms h and returns a channel closed when h has fired and its last
// callback returned.
func (hs *hooks) add(h Hook) <-chan struct{} {
	a := &armed{Hook: h, done: make(chan struct{})}
	hs.mu.Lock()
	defer hs.mu.Unlock()
	hs.list = append(hs.list, a)
	return a.done
}

// take removes and returns the first hook matching r, or nil.
func (hs *hooks) take(r Request) *armed {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	for i, a := range hs.list {
		if a.Match != nil && a.Match(r) {
			hs.list = append(hs.list[:i], hs.list[i+1:]...)
			return a
		}
	}
	return nil
}

// before runs a's Before; on a drop it closes done and aborts the handler.
func (a *armed) before() {
	if a == nil || a.Before == nil {
		return
	}
	if a.Before() {
		close(a.done)
		panic(http.ErrAbortHandler) // no answer: the connection is cut
	}
}

func (a *armed) afterApply() {
	if a != nil && a.AfterApply != nil {
		a.AfterApply()
	}
}

// afterWrite flushes w, runs AfterWrite and closes done.
func (a *armed) afterWrite(w http.ResponseWriter) {
	if a == nil {
		return
	}
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	if a.AfterWrite != nil {
		a.AfterWrite()
	}
	close(a.done)
}
