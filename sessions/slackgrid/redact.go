package slackgrid

import "strings"

// redactedError hides the text of an error that quotes a credential (a
// hostile or broken server can echo one into an error code) while keeping
// errors.Is and errors.As working.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redact returns err, or a redacted copy of it when its text contains one of
// secrets.
func redact(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	dirty := false
	for _, s := range secrets {
		if len(s) >= 4 && strings.Contains(msg, s) {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
			dirty = true
		}
	}
	if !dirty {
		return err
	}
	return &redactedError{msg: msg, err: err}
}
