package kratos

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeKratos is an in-memory Kratos v1.3.1 admin API speaking its JSON,
// including its quirks: revoke-one deactivates, revoke-all deletes, an unknown
// identity lists as 200 [], the per-identity listing pages with per_page/page
// (page 0 and 1 are the same page) and sends a Link header that leads back to
// the first page.
type fakeKratos struct {
	t *testing.T

	mu         sync.Mutex
	identities []fakeIdentity
	sessions   []*fakeSession // newest first
	calls      map[string]int // "METHOD /path" → count
	queries    []url.Values   // per-identity listing queries, in order
	auth       []string       // Authorization headers seen
	// fail scripts answers: "METHOD /path" → statuses to send before
	// behaving normally.
	fail map[string][]int
	// ignoreFilter makes identity search return everyone, like a server
	// that does not know credentials_identifier.
	ignoreFilter bool
}

type fakeIdentity struct {
	ID, Email string
}

type fakeSession struct {
	ID, IdentityID string
	Active         bool
	At             time.Time
	Devices        []map[string]any
}

func newFake(t *testing.T) *fakeKratos {
	return &fakeKratos{t: t, calls: map[string]int{}, fail: map[string][]int{}}
}

// start serves f on a loopback httptest server.
func (f *fakeKratos) start() *httptest.Server {
	srv := httptest.NewServer(f)
	f.t.Cleanup(srv.Close)
	return srv
}

func (f *fakeKratos) addIdentity(id, email string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.identities = append(f.identities, fakeIdentity{ID: id, Email: email})
}

// addSession adds a session newer than all others.
func (f *fakeKratos) addSession(s *fakeSession) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sessions = append([]*fakeSession{s}, f.sessions...)
}

func (f *fakeKratos) count(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[key]
}

func (f *fakeKratos) script(key string, statuses ...int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[key] = append(f.fail[key], statuses...)
}

func (f *fakeKratos) identityJSON(id fakeIdentity) map[string]any {
	return map[string]any{
		"id":        id.ID,
		"schema_id": "default",
		"state":     "active",
		"traits":    map[string]any{"email": id.Email},
		"credentials": map[string]any{"password": map[string]any{
			"type": "password", "identifiers": []string{strings.ToLower(id.Email)},
		}},
	}
}

func (f *fakeKratos) sessionJSON(s *fakeSession, withIdentity, withDevices bool) map[string]any {
	m := map[string]any{
		"id":                            s.ID,
		"active":                        s.Active,
		"authenticated_at":              s.At.Format(time.RFC3339Nano),
		"issued_at":                     s.At.Format(time.RFC3339Nano),
		"expires_at":                    s.At.Add(24 * time.Hour).Format(time.RFC3339Nano),
		"authenticator_assurance_level": "aal1",
	}
	if withDevices {
		devs := s.Devices
		if devs == nil {
			devs = []map[string]any{}
		}
		m["devices"] = devs
	}
	if withIdentity {
		for _, id := range f.identities {
			if id.ID == s.IdentityID {
				m["identity"] = f.identityJSON(id)
			}
		}
	}
	return m
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func notFound(w http.ResponseWriter) {
	writeJSON(w, http.StatusNotFound, map[string]any{"error": map[string]any{
		"code": 404, "status": "Not Found", "message": "Unable to locate the resource",
	}})
}

func (f *fakeKratos) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := r.Method + " " + r.URL.Path
	f.calls[key]++
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	if st := f.fail[key]; len(st) > 0 {
		f.fail[key] = st[1:]
		writeJSON(w, st[0], map[string]any{"error": map[string]any{"code": st[0], "message": "scripted"}})
		return
	}
	q := r.URL.Query()
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/admin/identities":
		want := strings.ToLower(q.Get("credentials_identifier"))
		out := []map[string]any{}
		for _, id := range f.identities {
			if f.ignoreFilter || want == "" || strings.ToLower(id.Email) == want {
				out = append(out, f.identityJSON(id))
			}
		}
		writeJSON(w, http.StatusOK, out)

	case len(parts) == 4 && parts[0] == "admin" && parts[1] == "identities" && parts[3] == "sessions":
		f.identitySessions(w, r, parts[2])

	case r.Method == http.MethodGet && r.URL.Path == "/admin/sessions":
		f.orgSessions(w, r)

	case len(parts) == 3 && parts[0] == "admin" && parts[1] == "sessions":
		s := f.find(parts[2])
		if s == nil {
			notFound(w)
			return
		}
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, http.StatusOK, f.sessionJSON(s, q.Get("expand") == "identity", false))
		case http.MethodDelete:
			s.Active = false
			w.WriteHeader(http.StatusNoContent)
		default:
			w.WriteHeader(http.StatusMethodNotAllowed)
		}

	default:
		f.t.Errorf("fake kratos: unexpected %s %s", r.Method, r.URL)
		notFound(w)
	}
}

func (f *fakeKratos) find(id string) *fakeSession {
	for _, s := range f.sessions {
		if s.ID == id {
			return s
		}
	}
	return nil
}

func (f *fakeKratos) identitySessions(w http.ResponseWriter, r *http.Request, identityID string) {
	known := false
	for _, id := range f.identities {
		known = known || id.ID == identityID
	}
	switch r.Method {
	case http.MethodDelete:
		if !known {
			notFound(w)
			return
		}
		kept := f.sessions[:0]
		for _, s := range f.sessions {
			if s.IdentityID != identityID {
				kept = append(kept, s)
			}
		}
		f.sessions = kept
		w.WriteHeader(http.StatusNoContent)
		return
	case http.MethodGet:
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	f.queries = append(f.queries, q)
	if q.Has("page_token") {
		f.t.Errorf("fake kratos: client followed the Link header: %s", r.URL)
	}
	var mine []*fakeSession
	for _, s := range f.sessions {
		if s.IdentityID == identityID {
			mine = append(mine, s)
		}
	}
	perPage, err := strconv.Atoi(q.Get("per_page"))
	if err != nil || perPage <= 0 {
		perPage = 250
	}
	page, _ := strconv.Atoi(q.Get("page"))
	if page < 1 {
		page = 1 // v1.3.1: page 0 and page 1 are the same page
	}
	out := []map[string]any{}
	for i := (page - 1) * perPage; i < len(mine) && i < page*perPage; i++ {
		out = append(out, f.sessionJSON(mine[i], true, true))
	}
	// The v1.3.1 bug: "next" points back at the first page.
	tok := base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, `{"offset":"%d","v":2}`, page*perPage))
	w.Header().Set("Link", fmt.Sprintf(`<%s?page=1&page_size=%d&page_token=%s&per_page=%d>; rel="next"`,
		r.URL.Path, perPage, tok, perPage))
	w.Header().Set("X-Total-Count", strconv.Itoa(len(mine)))
	writeJSON(w, http.StatusOK, out)
}

// orgSessions serves GET /admin/sessions with working keyset paging.
func (f *fakeKratos) orgSessions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	size, err := strconv.Atoi(q.Get("page_size"))
	if err != nil || size <= 0 {
		size = 250
	}
	var live []*fakeSession
	for _, s := range f.sessions {
		if q.Get("active") == "" || strconv.FormatBool(s.Active) == q.Get("active") {
			live = append(live, s)
		}
	}
	start := 0
	if tok := q.Get("page_token"); tok != "" {
		b, err := base64.RawURLEncoding.DecodeString(tok)
		if err == nil {
			start, err = strconv.Atoi(strings.TrimPrefix(string(b), "offset="))
		}
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]any{"code": 400}})
			return
		}
	}
	expand := q["expand"]
	withID := false
	withDev := false
	for _, e := range expand {
		withID = withID || strings.EqualFold(e, "identity")
		withDev = withDev || strings.EqualFold(e, "devices")
	}
	out := []map[string]any{}
	for i := start; i < len(live) && i < start+size; i++ {
		out = append(out, f.sessionJSON(live[i], withID, withDev))
	}
	link := fmt.Sprintf(`</admin/sessions?page_size=%d&page_token=%s>; rel="first"`, size,
		base64.RawURLEncoding.EncodeToString([]byte("offset=0")))
	if start+size < len(live) {
		// Host deliberately foreign: only the token may be used.
		link += fmt.Sprintf(`,<http://evil.invalid/admin/sessions?page_size=%d&page_token=%s>; rel="next"`, size,
			base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "offset=%d", start+size)))
	}
	w.Header().Set("Link", link)
	w.Header().Set("X-Total-Count", strconv.Itoa(len(live)))
	writeJSON(w, http.StatusOK, out)
}

// handlerTransport serves requests in memory, for tests inside a synctest
// bubble where real sockets would block fake time.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	if r.Body != nil {
		defer r.Body.Close()
	}
	t.h.ServeHTTP(rec, r)
	resp := rec.Result()
	resp.Request = r
	return resp, nil
}
