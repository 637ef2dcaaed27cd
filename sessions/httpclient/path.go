package httpclient

import (
	"errors"
	"net/url"
)

// ErrBadID is returned by PathSegment for an id that cannot stand as one
// path segment.
var ErrBadID = errors.New("invalid id")

// maxSegment bounds an id put into a path; no provider id comes near it.
const maxSegment = 512

// PathSegment escapes id as one URL path segment. It refuses (ErrBadID) the
// empty string, the dot segments "." and ".." that a server would resolve
// against the parent path, and ids longer than 512 bytes, so that an id typed
// by a user or sent by a provider can never address another resource.
func PathSegment(id string) (string, error) {
	if id == "" || id == "." || id == ".." || len(id) > maxSegment {
		return "", ErrBadID
	}
	return url.PathEscape(id), nil
}

// IsStatus reports whether err is, or wraps, a *StatusError with the given
// HTTP status.
func IsStatus(err error, status int) bool {
	se, ok := errors.AsType[*StatusError](err)
	return ok && se.Status == status
}
