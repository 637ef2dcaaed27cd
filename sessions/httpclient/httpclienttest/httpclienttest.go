// Package httpclienttest lets connector tests reach an http.Handler fake
// without sockets, so they can run inside a testing/synctest bubble where
// Retry-After and backoff waits pass in fake time.
package httpclienttest

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
)

// Transport is an http.RoundTripper that serves each request with Handler
// in the calling goroutine, through an httptest.ResponseRecorder.
type Transport struct {
	Handler http.Handler
}

// RoundTrip serves req with t.Handler. A handler that panics with
// http.ErrAbortHandler is reported as a network error.
func (t Transport) RoundTrip(req *http.Request) (resp *http.Response, err error) {
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	in := req.Clone(req.Context())
	if in.Body == nil {
		in.Body = http.NoBody
	}
	if in.RemoteAddr == "" {
		in.RemoteAddr = "192.0.2.1:1234"
	}
	if in.Host == "" {
		in.Host = req.URL.Host
	}
	in.RequestURI = req.URL.RequestURI()
	rec := httptest.NewRecorder()
	defer func() {
		if req.Body != nil {
			req.Body.Close()
		}
		if r := recover(); r != nil {
			if r == http.ErrAbortHandler {
				resp, err = nil, errors.New("connection reset by fake")
				return
			}
			panic(r)
		}
	}()
	t.Handler.ServeHTTP(rec, in)
	resp = rec.Result()
	resp.Request = req
	// The wire canonicalises header names ("x-ratelimit-reset" arrives as
	// "X-Ratelimit-Reset"); so does this transport.
	h := make(http.Header, len(resp.Header))
	for k, vs := range resp.Header {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	resp.Header = h
	if resp.Body == nil {
		resp.Body = io.NopCloser(http.NoBody)
	}
	return resp, nil
}

// Client returns an *http.Client whose requests are served by h.
func Client(h http.Handler) *http.Client {
	return &http.Client{Transport: Transport{Handler: h}}
}

// ErrTransport is the network error FailFirst returns.
var ErrTransport = errors.New("dial tcp: connection refused")

// FailFirst returns a RoundTripper that fails the first n requests with
// ErrTransport and serves the rest with h.
func FailFirst(n int, h http.Handler) http.RoundTripper {
	return &failFirst{n: n, next: Transport{Handler: h}}
}

type failFirst struct {
	mu   sync.Mutex
	n    int
	next http.RoundTripper
}

func (f *failFirst) RoundTrip(req *http.Request) (*http.Response, error) {
	f.mu.Lock()
	fail := f.n > 0
	if fail {
		f.n--
	}
	f.mu.Unlock()
	if fail {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, ErrTransport
	}
	return f.next.RoundTrip(req)
}
