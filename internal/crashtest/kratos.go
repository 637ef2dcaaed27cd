package crashtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

// Kratos is an in-memory Ory Kratos v1.3.1 admin API with real state: a
// revoked session stays revoked, and every revocation is counted as
// effective (it changed something) or a no-op (it found the session already
// gone). It serves the endpoints the sessions/kratos connector uses:
//
//	GET    /admin/identities?credentials_identifier=…
//	GET    /admin/identities/{id}/sessions?per_page&page   (X-Total-Count)
//	DELETE /admin/identities/{id}/sessions                 (delete all)
//	GET    /admin/sessions/{id}?expand=identity
//	DELETE /admin/sessions/{id}                            (deactivate)
//	GET    /admin/sessions?active=true&expand=…            (org-wide)
type Kratos struct {
	t   testing.TB
	srv *httptest.Server
	hooks

	mu         sync.Mutex
	identities []kratosIdentity
	sessions   []*kratosSession // oldest first
	calls      map[string]int   // "METHOD /path"
	// Per session: revocations that changed it (deactivated or deleted it).
	changes map[string]int
	// Per identity: revoke-all calls that deleted something, and those that
	// found nothing left.
	allEffective, allNoop map[string]int
	// Per session: revoke-one calls that found it already inactive or gone.
	oneNoop map[string]int
	// sticky identities accept revocations (204) but keep their sessions,
	// like a provider whose revocation did not take.
	sticky map[string]bool
}

// Sticky makes revocations of identity's sessions answer 204 and change
// nothing (on), or work again (off).
func (k *Kratos) Sticky(identity string, on bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.sticky == nil {
		k.sticky = map[string]bool{}
	}
	k.sticky[identity] = on
}

type kratosIdentity struct{ ID, Email string }

type kratosSession struct {
	ID, IdentityID string
	Active         bool
	Deleted        bool
	At             time.Time
	UserAgent, IP  string
}

// NewKratos starts the fake on 127.0.0.1; t.Cleanup stops it. An unexpected
// request fails t.
func NewKratos(t testing.TB) *Kratos {
	k := &Kratos{t: t, calls: map[string]int{}, changes: map[string]int{},
		allEffective: map[string]int{}, allNoop: map[string]int{}, oneNoop: map[string]int{}}
	k.srv = httptest.NewServer(http.HandlerFunc(k.serve))
	t.Cleanup(k.srv.Close)
	return k
}

// URL is the admin API base (KRATOS_ADMIN_URL).
func (k *Kratos) URL() string { return k.srv.URL }

// Hook arms a one-shot hook; see Hook. The channel closes once it fired.
func (k *Kratos) Hook(h Hook) <-chan struct{} { return k.add(h) }

// AddIdentity adds an identity whose login identifier is email and returns
// its id.
func (k *Kratos) AddIdentity(email string) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	id := uuid.NewString()
	k.identities = append(k.identities, kratosIdentity{ID: id, Email: strings.ToLower(email)})
	return id
}

// AddSession adds an active session for identity and returns its id.
func (k *Kratos) AddSession(identity, userAgent, ip string) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := &kratosSession{ID: uuid.NewString(), IdentityID: identity, Active: true,
		At: time.Now().UTC().Add(-time.Duration(len(k.sessions)+1) * time.Hour), UserAgent: userAgent, IP: ip}
	k.sessions = append(k.sessions, s)
	return s.ID
}

// Live returns the ids of identity's sessions that still work, sorted.
func (k *Kratos) Live(identity string) []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []string
	for _, s := range k.sessions {
		if s.IdentityID == identity && s.Active && !s.Deleted {
			out = append(out, s.ID)
		}
	}
	slices.Sort(out)
	return out
}

// Changes is how many revocations changed session id (1 once it is revoked;
// more would mean it was revived and revoked again).
func (k *Kratos) Changes(session string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.changes[session]
}

// RevokeAlls returns how many revoke-all calls for identity deleted
// something (effective) and how many found nothing left (noop).
func (k *Kratos) RevokeAlls(identity string) (effective, noop int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.allEffective[identity], k.allNoop[identity]
}

// RevokeOneNoops is how many revoke-one calls found session already
// inactive or gone.
func (k *Kratos) RevokeOneNoops(session string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.oneNoop[session]
}

// Calls is how many requests "METHOD /path" (query excluded) received.
func (k *Kratos) Calls(key string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.calls[key]
}

func (k *Kratos) serve(w http.ResponseWriter, r *http.Request) {
	key := r.Method + " " + r.URL.Path
	k.mu.Lock()
	k.calls[key]++
	k.mu.Unlock()

	h := k.take(Request{Method: r.Method, Path: r.URL.Path, Params: r.URL.Query()})
	h.before()
	status, body, header := k.apply(r)
	h.afterApply()
	for name, v := range header {
		w.Header()[name] = v
	}
	if body == nil {
		w.WriteHeader(status)
	} else {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(body)
	}
	h.afterWrite(w)
}

var errNotFound = map[string]any{"error": map[string]any{
	"code": 404, "status": "Not Found", "message": "Unable to locate the resource",
}}

// apply performs the request on the fake's state and returns the answer.
func (k *Kratos) apply(r *http.Request) (int, any, http.Header) {
	k.mu.Lock()
	defer k.mu.Unlock()
	q := r.URL.Query()
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/admin/identities":
		want := strings.ToLower(q.Get("credentials_identifier"))
		out := []any{}
		for _, id := range k.identities {
			if want == "" || id.Email == want {
				out = append(out, identityJSON(id))
			}
		}
		return http.StatusOK, out, nil

	case len(parts) == 4 && parts[0] == "admin" && parts[1] == "identities" && parts[3] == "sessions":
		return k.identitySessions(r, parts[2])

	case r.Method == http.MethodGet && r.URL.Path == "/admin/sessions":
		out := []any{}
		for _, s := range k.sessions {
			if s.Deleted || (q.Get("active") == "true" && !s.Active) {
				continue
			}
			out = append(out, k.sessionJSON(s, true))
		}
		h := http.Header{"X-Total-Count": {strconv.Itoa(len(out))}}
		return http.StatusOK, out, h

	case len(parts) == 3 && parts[0] == "admin" && parts[1] == "sessions":
		s := k.find(parts[2])
		if s == nil {
			if r.Method == http.MethodDelete {
				k.oneNoop[parts[2]]++
			}
			return http.StatusNotFound, errNotFound, nil
		}
		switch r.Method {
		case http.MethodGet:
			return http.StatusOK, k.sessionJSON(s, q.Get("expand") == "identity"), nil
		case http.MethodDelete:
			if k.sticky[s.IdentityID] {
				return http.StatusNoContent, nil, nil
			}
			if s.Active {
				s.Active = false
				k.changes[s.ID]++
			} else {
				k.oneNoop[s.ID]++
			}
			return http.StatusNoContent, nil, nil
		}
	}
	k.t.Errorf("fake kratos: unexpected %s %s", r.Method, r.URL)
	return http.StatusNotFound, errNotFound, nil
}

func (k *Kratos) identitySessions(r *http.Request, identity string) (int, any, http.Header) {
	known := slices.ContainsFunc(k.identities, func(id kratosIdentity) bool { return id.ID == identity })
	var mine []*kratosSession
	for i := len(k.sessions) - 1; i >= 0; i-- { // newest first
		if s := k.sessions[i]; s.IdentityID == identity && !s.Deleted {
			mine = append(mine, s)
		}
	}
	switch r.Method {
	case http.MethodDelete:
		if !known {
			return http.StatusNotFound, errNotFound, nil
		}
		if k.sticky[identity] {
			return http.StatusNoContent, nil, nil
		}
		for _, s := range mine {
			s.Deleted = true
			k.changes[s.ID]++
		}
		if len(mine) > 0 {
			k.allEffective[identity]++
		} else {
			k.allNoop[identity]++
		}
		return http.StatusNoContent, nil, nil
	case http.MethodGet:
	default:
		return http.StatusMethodNotAllowed, nil, nil
	}
	q := r.URL.Query()
	perPage, err := strconv.Atoi(q.Get("per_page"))
	if err != nil || perPage <= 0 {
		perPage = 250
	}
	page, _ := strconv.Atoi(q.Get("page"))
	page = max(page, 1)
	out := []any{}
	for i := (page - 1) * perPage; i < len(mine) && i < page*perPage; i++ {
		out = append(out, k.sessionJSON(mine[i], true))
	}
	return http.StatusOK, out, http.Header{"X-Total-Count": {strconv.Itoa(len(mine))}}
}

func (k *Kratos) find(id string) *kratosSession {
	for _, s := range k.sessions {
		if s.ID == id && !s.Deleted {
			return s
		}
	}
	return nil
}

func identityJSON(id kratosIdentity) map[string]any {
	return map[string]any{
		"id": id.ID, "schema_id": "default", "state": "active",
		"traits": map[string]any{"email": id.Email},
		"credentials": map[string]any{"password": map[string]any{
			"type": "password", "identifiers": []string{id.Email},
		}},
	}
}

func (k *Kratos) sessionJSON(s *kratosSession, withIdentity bool) map[string]any {
	m := map[string]any{
		"id":                            s.ID,
		"active":                        s.Active,
		"authenticated_at":              s.At.Format(time.RFC3339Nano),
		"issued_at":                     s.At.Format(time.RFC3339Nano),
		"expires_at":                    s.At.Add(72 * time.Hour).Format(time.RFC3339Nano),
		"authenticator_assurance_level": "aal1",
		"devices": []any{map[string]any{
			"id": uuid.NewSHA1(uuid.NameSpaceOID, []byte(s.ID)).String(), "ip_address": s.IP,
			"user_agent": s.UserAgent, "location": "Berlin, DE",
		}},
	}
	if withIdentity {
		for _, id := range k.identities {
			if id.ID == s.IdentityID {
				m["identity"] = identityJSON(id)
			}
		}
	}
	return m
}

// String summarises the calls received, for a test log.
func (k *Kratos) String() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	keys := make([]string, 0, len(k.calls))
	for key := range k.calls {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, key := range keys {
		fmt.Fprintf(&b, "%s ×%d; ", key, k.calls[key])
	}
	return b.String()
}
