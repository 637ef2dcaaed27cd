package crashtest

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// SlackProxy forwards Web API calls to a (fake) Slack and lets hooks act at
// exact points of one call: before Slack sees it, after Slack applied it but
// before the app reads the answer, after the answer is written. The Socket
// Mode URL that apps.connections.open returns is passed through untouched,
// so envelopes and acks go to Slack directly.
type SlackProxy struct {
	t        testing.TB
	srv      *httptest.Server
	upstream string // Web API base ending in "/"
	hooks
}

// NewSlackProxy proxies to the Web API at upstream (ending in "/api/");
// t.Cleanup stops it.
func NewSlackProxy(t testing.TB, upstream string) *SlackProxy {
	p := &SlackProxy{t: t, upstream: upstream}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

// APIURL is the Web API base to give the app (SLACK_API_URL).
func (p *SlackProxy) APIURL() string { return p.srv.URL + "/api/" }

// Hook arms a one-shot hook on a Web API call; Request.Path is the method
// name. The channel closes once it fired.
func (p *SlackProxy) Hook(h Hook) <-chan struct{} { return p.add(h) }

func (p *SlackProxy) serve(w http.ResponseWriter, r *http.Request) {
	method := strings.TrimPrefix(r.URL.Path, "/api/")
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	h := p.take(Request{Method: r.Method, Path: method, Params: params(r, body)})
	h.before()

	req, err := http.NewRequestWithContext(r.Context(), r.Method, p.upstream+method+queryOf(r.URL), bytes.NewReader(body))
	if err != nil {
		p.t.Errorf("slack proxy: %v", err)
		http.Error(w, "proxy", http.StatusBadGateway)
		return
	}
	for _, k := range []string{"Content-Type", "Authorization"} {
		if v := r.Header.Get(k); v != "" {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		// The app went away mid-call (a test killed it); nothing to answer.
		panic(http.ErrAbortHandler)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	h.afterApply()
	for _, k := range []string{"Content-Type", "Retry-After"} {
		if v := resp.Header.Get(k); v != "" {
			w.Header().Set(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(out)
	h.afterWrite(w)
}

func queryOf(u *url.URL) string {
	if u.RawQuery == "" {
		return ""
	}
	return "?" + u.RawQuery
}

// params merges the query with a form body or a JSON body's scalar fields.
func params(r *http.Request, body []byte) url.Values {
	v := r.URL.Query()
	ctype, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ctype == "application/json" {
		var m map[string]json.RawMessage
		if json.Unmarshal(body, &m) == nil {
			for k, raw := range m {
				var s string
				if json.Unmarshal(raw, &s) != nil {
					s = string(raw)
				}
				v.Add(k, s)
			}
		}
		return v
	}
	if form, err := url.ParseQuery(string(body)); err == nil {
		for k, vs := range form {
			v[k] = append(v[k], vs...)
		}
	}
	return v
}
