package httpclient

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestPathSegment(t *testing.T) {
	for _, tc := range []struct {
		id, want string
		err      bool
	}{
		{id: "00u1abc", want: "00u1abc"},
		{id: "a/b", want: "a%2Fb"},
		{id: "a?b#c", want: "a%3Fb%23c"},
		{id: "a b", want: "a%20b"},
		{id: "..a", want: "..a"},
		{id: "%2e%2e", want: "%252e%252e"},
		{id: "", err: true},
		{id: ".", err: true},
		{id: "..", err: true},
		{id: strings.Repeat("x", 513), err: true},
		{id: strings.Repeat("x", 512), want: strings.Repeat("x", 512)},
	} {
		got, err := PathSegment(tc.id)
		if tc.err {
			if !errors.Is(err, ErrBadID) || got != "" {
				t.Errorf("PathSegment(%.20q) = %q, %v; want ErrBadID", tc.id, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("PathSegment(%.20q) = %q, %v; want %q", tc.id, got, err, tc.want)
		}
	}
}

func TestIsStatus(t *testing.T) {
	se := &StatusError{Provider: "p", Method: http.MethodGet, Path: "/x", Status: http.StatusNotFound}
	wrapped := fmt.Errorf("list sessions: %w", se)
	if !IsStatus(wrapped, http.StatusNotFound) {
		t.Error("IsStatus(wrapped 404, 404) = false")
	}
	if IsStatus(wrapped, http.StatusForbidden) {
		t.Error("IsStatus(wrapped 404, 403) = true")
	}
	if IsStatus(errors.New("status 404"), http.StatusNotFound) {
		t.Error("IsStatus(plain error, 404) = true")
	}
	if IsStatus(nil, http.StatusNotFound) {
		t.Error("IsStatus(nil, 404) = true")
	}
}
