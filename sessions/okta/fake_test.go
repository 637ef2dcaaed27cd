package okta

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

const testToken = "00TESTtoken-secret-5a5a5a"

// reply is a scripted answer served before the fake's own.
type reply struct {
	status int
	header map[string]string
	body   string
}

// fakeOkta speaks the Okta Management API JSON that the connector reads.
type fakeOkta struct {
	mu       sync.Mutex
	users    []map[string]any
	events   []map[string]any            // System Log, ascending by published
	clients  map[string][]map[string]any // user id → clients
	tokens   map[string][]map[string]any // client id → refresh tokens
	sessions map[string]bool             // live session ids
	pageSize int                         // System Log page size the fake uses
	endless  bool                        // System Log always offers a next page

	script   map[string][]reply // "METHOD /path" → answers served first
	calls    map[string]int     // "METHOD /path" → count
	requests []*http.Request
}

func newFakeOkta() *fakeOkta {
	return &fakeOkta{
		clients:  map[string][]map[string]any{},
		tokens:   map[string][]map[string]any{},
		sessions: map[string]bool{},
		pageSize: 2,
		script:   map[string][]reply{},
		calls:    map[string]int{},
	}
}

func (f *fakeOkta) on(key string, rs ...reply) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.script[key] = append(f.script[key], rs...)
}

func (f *fakeOkta) count(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[key]
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Date", time.Now().UTC().Format(http.TimeFormat))
	w.Header().Set("X-Rate-Limit-Limit", "600")
	w.Header().Set("X-Rate-Limit-Remaining", "599")
	w.Header().Set("X-Rate-Limit-Reset", strconv.FormatInt(time.Now().Add(time.Minute).Unix(), 10))
	w.WriteHeader(status)
	if v != nil {
		json.NewEncoder(w).Encode(v)
	}
}

func oktaError(w http.ResponseWriter, status int, code, summary string) {
	writeJSON(w, status, map[string]any{
		"errorCode": code, "errorSummary": summary, "errorLink": code, "errorId": "oae123", "errorCauses": []any{},
	})
}

func (f *fakeOkta) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := r.Method + " " + r.URL.Path
	f.calls[key]++
	f.requests = append(f.requests, r.Clone(r.Context()))
	if r.Header.Get("Authorization") != "SSWS "+testToken {
		oktaError(w, 401, "E0000011", "Invalid token provided")
		return
	}
	if rs := f.script[key]; len(rs) > 0 {
		f.script[key] = rs[1:]
		rp := rs[0]
		for k, v := range rp.header {
			w.Header()[k] = []string{v}
		}
		w.WriteHeader(rp.status)
		fmt.Fprint(w, rp.body)
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/") // api v1 …
	if len(parts) < 3 || parts[0] != "api" || parts[1] != "v1" {
		oktaError(w, 404, "E0000022", "The endpoint does not support the provided HTTP method")
		return
	}
	parts = parts[2:]
	switch {
	case r.Method == "GET" && len(parts) == 1 && parts[0] == "users":
		f.searchUsers(w, r)
	case r.Method == "GET" && len(parts) == 2 && parts[0] == "users":
		for _, u := range f.users {
			if u["id"] == parts[1] {
				writeJSON(w, 200, u)
				return
			}
		}
		oktaError(w, 404, "E0000007", "Not found: Resource not found: "+parts[1]+" (User)")
	case r.Method == "GET" && len(parts) == 1 && parts[0] == "logs":
		f.logs(w, r)
	case r.Method == "DELETE" && len(parts) == 2 && parts[0] == "sessions":
		if !f.sessions[parts[1]] {
			oktaError(w, 404, "E0000007", "Not found: Resource not found: "+parts[1]+" (Session)")
			return
		}
		delete(f.sessions, parts[1])
		w.WriteHeader(204)
	case r.Method == "DELETE" && len(parts) == 3 && parts[0] == "users" && parts[2] == "sessions":
		if r.URL.Query().Get("oauthTokens") != "true" {
			oktaError(w, 400, "E0000001", "oauthTokens missing")
			return
		}
		f.sessions = map[string]bool{}
		w.WriteHeader(204)
	case r.Method == "GET" && len(parts) == 3 && parts[0] == "users" && parts[2] == "clients":
		writeJSON(w, 200, f.clients[parts[1]])
	case r.Method == "GET" && len(parts) == 5 && parts[2] == "clients" && parts[4] == "tokens":
		ts := f.tokens[parts[3]]
		if ts == nil {
			ts = []map[string]any{}
		}
		writeJSON(w, 200, ts)
	case r.Method == "DELETE" && len(parts) == 5 && parts[2] == "clients" && (parts[4] == "tokens" || parts[4] == "grants"):
		if parts[4] == "tokens" {
			delete(f.tokens, parts[3])
		}
		w.WriteHeader(204)
	default:
		oktaError(w, 404, "E0000022", "The endpoint does not support the provided HTTP method")
	}
}

// searchUsers understands only `profile.email eq "…"` with \" and \\ escapes.
func (f *fakeOkta) searchUsers(w http.ResponseWriter, r *http.Request) {
	s := r.URL.Query().Get("search")
	rest, ok := strings.CutPrefix(s, `profile.email eq "`)
	if !ok || !strings.HasSuffix(rest, `"`) {
		oktaError(w, 400, "E0000031", "Invalid search criteria.")
		return
	}
	rest = strings.TrimSuffix(rest, `"`)
	var want strings.Builder
	for i := 0; i < len(rest); i++ {
		if rest[i] == '\\' && i+1 < len(rest) {
			i++
		} else if rest[i] == '"' {
			oktaError(w, 400, "E0000031", "Invalid search criteria.")
			return
		}
		want.WriteByte(rest[i])
	}
	out := []map[string]any{}
	for _, u := range f.users {
		if strings.EqualFold(u["profile"].(map[string]any)["email"].(string), want.String()) {
			out = append(out, u)
		}
	}
	writeJSON(w, 200, out)
}

// logs pages the System Log with `after` (an index here) and Link headers.
func (f *fakeOkta) logs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	since, err1 := time.Parse(time.RFC3339, q.Get("since"))
	until, err2 := time.Parse(time.RFC3339, q.Get("until"))
	if err1 != nil || err2 != nil {
		oktaError(w, 400, "E0000001", "Api validation failed: since/until")
		return
	}
	var match []map[string]any
	for _, e := range f.events {
		actor := e["actor"].(map[string]any)["id"].(string)
		if !strings.Contains(q.Get("filter"), `actor.id eq "`+actor+`"`) ||
			!strings.Contains(q.Get("filter"), `eventType eq "user.session.start"`) {
			continue
		}
		p, _ := time.Parse(time.RFC3339, e["published"].(string))
		if p.Before(since) || p.After(until) {
			continue
		}
		match = append(match, e)
	}
	after, _ := strconv.Atoi(q.Get("after"))
	end := min(after+f.pageSize, len(match))
	page := match[min(after, len(match)):end]
	next := url.Values{}
	for k, v := range q {
		next[k] = v
	}
	next.Set("after", strconv.Itoa(end))
	self := "https://" + r.Host + r.URL.Path + "?" + r.URL.RawQuery
	links := []string{`<` + self + `>; rel="self"`}
	if end < len(match) || f.endless {
		links = append(links, `<https://`+r.Host+r.URL.Path+"?"+next.Encode()+`>; rel="next"`)
	}
	w.Header()["Link"] = links
	if f.endless && len(page) == 0 && len(match) > 0 {
		page = match[:1]
	}
	if page == nil {
		page = []map[string]any{}
	}
	writeJSON(w, 200, page)
}

func oktaUser(id, email, first, last string, extra map[string]any) map[string]any {
	profile := map[string]any{"login": email, "email": email, "firstName": first, "lastName": last}
	for k, v := range extra {
		profile[k] = v
	}
	return map[string]any{"id": id, "status": "ACTIVE", "created": "2023-01-01T00:00:00.000Z", "profile": profile}
}

func signInEvent(uuid, actor string, published time.Time, sessionID, ip, ua, city, country, result string) map[string]any {
	return map[string]any{
		"uuid":           uuid,
		"published":      published.UTC().Format(time.RFC3339),
		"eventType":      "user.session.start",
		"displayMessage": "User login to Okta",
		"severity":       "INFO",
		"actor":          map[string]any{"id": actor, "type": "User", "alternateId": "x@example.com"},
		"outcome":        map[string]any{"result": result},
		"client": map[string]any{
			"ipAddress": ip,
			"userAgent": map[string]any{"rawUserAgent": ua, "os": "Mac OS X", "browser": "CHROME"},
			"geographicalContext": map[string]any{
				"city": city, "state": "", "country": country, "postalCode": "10115",
				"geolocation": map[string]any{"lat": 52.52, "lon": 13.40},
			},
			"zone": "null", "device": "Computer",
		},
		"authenticationContext": map[string]any{"externalSessionId": sessionID, "authenticationStep": 0},
	}
}
