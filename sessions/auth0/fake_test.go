package auth0

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	testClientID     = "m2m-client"
	testClientSecret = "cs-SECRET-0badc0de"
	testAudience     = "https://acme.auth0.com/api/v2/"
)

type reply struct {
	status int
	header map[string]string
	body   string
}

// fakeAuth0 speaks the Auth0 token endpoint and the Management API v2 JSON
// the connector reads.
type fakeAuth0 struct {
	mu            sync.Mutex
	users         []map[string]any
	sessions      map[string][]map[string]any // user id → sessions
	refreshTokens map[string][]map[string]any // user id → refresh tokens
	pageSize      int
	issued        int // tokens issued
	tokenTTL      int // expires_in seconds

	script map[string][]reply // "METHOD /path" → answers served first
	calls  map[string]int
	forms  []string // token request bodies' grant types
}

func newFakeAuth0() *fakeAuth0 {
	return &fakeAuth0{
		sessions:      map[string][]map[string]any{},
		refreshTokens: map[string][]map[string]any{},
		pageSize:      2,
		tokenTTL:      86400,
		script:        map[string][]reply{},
		calls:         map[string]int{},
	}
}

func (f *fakeAuth0) on(key string, rs ...reply) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.script[key] = append(f.script[key], rs...)
}

func (f *fakeAuth0) count(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[key]
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	h["x-ratelimit-limit"] = []string{"50"}
	h["x-ratelimit-remaining"] = []string{"49"}
	h["x-ratelimit-reset"] = []string{strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10)}
	w.WriteHeader(status)
	if v != nil {
		json.NewEncoder(w).Encode(v)
	}
}

func apiError(w http.ResponseWriter, status int, errText, msg, code string) {
	body := map[string]any{"statusCode": status, "error": errText, "message": msg}
	if code != "" {
		body["errorCode"] = code
	}
	writeJSON(w, status, body)
}

func (f *fakeAuth0) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := r.Method + " " + r.URL.Path
	f.calls[key]++
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
	if key == "POST /oauth/token" {
		f.token(w, r)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+f.currentToken() {
		apiError(w, 401, "Unauthorized", "Invalid token", "")
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/") // api v2 …
	if len(parts) < 3 || parts[0] != "api" || parts[1] != "v2" {
		apiError(w, 404, "Not Found", "Not Found", "")
		return
	}
	parts = parts[2:]
	switch {
	case r.Method == "GET" && len(parts) == 1 && parts[0] == "users-by-email":
		out := []map[string]any{}
		for _, u := range f.users {
			if strings.EqualFold(u["email"].(string), r.URL.Query().Get("email")) {
				out = append(out, u)
			}
		}
		writeJSON(w, 200, out)
	case r.Method == "GET" && len(parts) == 3 && parts[0] == "users" && parts[2] == "sessions":
		if !f.known(parts[1]) {
			apiError(w, 404, "Not Found", "The user does not exist.", "inexistent_user")
			return
		}
		f.page(w, r, "sessions", f.sessions[parts[1]])
	case r.Method == "GET" && len(parts) == 3 && parts[0] == "users" && parts[2] == "refresh-tokens":
		f.page(w, r, "refresh_tokens", f.refreshTokens[parts[1]])
	case r.Method == "DELETE" && len(parts) == 2 && parts[0] == "sessions":
		for uid, ss := range f.sessions {
			for i, s := range ss {
				if s["id"] == parts[1] {
					f.sessions[uid] = append(ss[:i:i], ss[i+1:]...)
					w.WriteHeader(202)
					return
				}
			}
		}
		apiError(w, 404, "Not Found", "The session does not exist.", "")
	case r.Method == "DELETE" && len(parts) == 3 && parts[0] == "users" && parts[2] == "sessions":
		delete(f.sessions, parts[1])
		w.WriteHeader(202)
	case r.Method == "DELETE" && len(parts) == 3 && parts[0] == "users" && parts[2] == "refresh-tokens":
		delete(f.refreshTokens, parts[1])
		w.WriteHeader(202)
	default:
		apiError(w, 404, "Not Found", "Not Found", "")
	}
}

func (f *fakeAuth0) known(id string) bool {
	for _, u := range f.users {
		if u["user_id"] == id {
			return true
		}
	}
	return false
}

func (f *fakeAuth0) currentToken() string { return "at-" + strconv.Itoa(f.issued) }

func (f *fakeAuth0) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, 400, map[string]any{"error": "invalid_request"})
		return
	}
	f.forms = append(f.forms, r.PostForm.Get("grant_type"))
	if r.PostForm.Get("grant_type") != "client_credentials" ||
		r.PostForm.Get("client_id") != testClientID ||
		r.PostForm.Get("client_secret") != testClientSecret {
		writeJSON(w, 401, map[string]any{"error": "access_denied", "error_description": "Unauthorized: " + r.PostForm.Get("client_secret")})
		return
	}
	if r.PostForm.Get("audience") != testAudience {
		writeJSON(w, 403, map[string]any{"error": "access_denied", "error_description": "Service not enabled within domain"})
		return
	}
	f.issued++
	writeJSON(w, 200, map[string]any{
		"access_token": f.currentToken(), "token_type": "Bearer", "expires_in": f.tokenTTL,
		"scope": "read:users read:sessions delete:sessions read:refresh_tokens delete:refresh_tokens",
	})
}

// page serves a checkpoint page: from is an index here, next the following one.
func (f *fakeAuth0) page(w http.ResponseWriter, r *http.Request, field string, items []map[string]any) {
	q := r.URL.Query()
	take, err := strconv.Atoi(q.Get("take"))
	if err != nil || take < 1 || take > 100 {
		apiError(w, 400, "Bad Request", "Query validation error: take", "invalid_query_string")
		return
	}
	from := 0
	if s := q.Get("from"); s != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(s, "cp-"))
		if err != nil {
			apiError(w, 400, "Bad Request", "bad checkpoint", "invalid_query_string")
			return
		}
		from = n
	}
	end := min(from+min(take, f.pageSize), len(items))
	page := items[min(from, len(items)):end]
	if page == nil {
		page = []map[string]any{}
	}
	body := map[string]any{field: page}
	if end < len(items) {
		body["next"] = "cp-" + strconv.Itoa(end)
	}
	writeJSON(w, 200, body)
}

func auth0Session(id, userID string, created, last time.Time, lastIP, lastUA string) map[string]any {
	ts := func(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
	return map[string]any{
		"id": id, "user_id": userID,
		"created_at": ts(created), "updated_at": ts(last), "authenticated_at": ts(created),
		"idle_expires_at": ts(last.Add(72 * time.Hour)), "expires_at": ts(created.Add(30 * 24 * time.Hour)),
		"last_interacted_at": ts(last),
		"device": map[string]any{
			"initial_user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0", "initial_ip": "192.0.2.1", "initial_asn": "64496",
			"last_user_agent": lastUA, "last_ip": lastIP, "last_asn": "64497",
		},
		"clients":        []map[string]any{{"client_id": "spa-client"}},
		"authentication": map[string]any{"methods": []map[string]any{{"name": "pwd", "timestamp": ts(created)}}},
		"cookie":         map[string]any{"mode": "persistent"},
	}
}
