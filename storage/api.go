// Package storage keeps Warden's durable state in one bbolt file: playbook
// runs, approvals, known devices, dedupe keys, connector state, posted
// messages, and the tamper-evident audit chain.
//
// storage is the only package that imports bbolt. Every public method owns
// its transaction, checks ctx before starting it, and copies values out
// before returning. Writes use db.Update (never Batch, never NoSync).
package storage

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Check them with errors.Is.
var (
	// ErrNotFound is returned by Get and Delete when the key is absent.
	ErrNotFound = errors.New("not found")
	// ErrConflict is returned by Put and Delete when the stored version is
	// not the expected one (CAS failed, or a create of an existing key).
	ErrConflict = errors.New("version conflict")
	// ErrInUse is returned by Open when another process holds the data file.
	ErrInUse = errors.New("data file in use by another warden")
	// ErrCorrupt is returned (as a *ChainError) by Verify when the audit
	// chain is broken.
	ErrCorrupt = errors.New("audit chain broken")
	// ErrSchema is returned by Open when the file was written by a newer
	// Warden (a schema version this binary does not know) or is not a
	// Warden data file.
	ErrSchema = errors.New("unsupported data file schema")
	// ErrReadOnly is returned by writes on a DB opened with Options.ReadOnly.
	ErrReadOnly = errors.New("data file opened read-only")
	// ErrInvalid is returned for arguments storage cannot store: an unknown
	// bucket, an empty or oversized key, a subject containing a NUL byte.
	ErrInvalid = errors.New("invalid argument")
)

// ChainError reports the first break in the audit chain. It satisfies
// errors.Is(err, ErrCorrupt).
type ChainError struct {
	Seq    uint64 // the first sequence that does not verify
	Reason string // what is wrong with it, e.g. "hash mismatch"
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("%v at seq %d: %s", ErrCorrupt, e.Seq, e.Reason)
}

// Unwrap makes errors.Is(err, ErrCorrupt) true.
func (e *ChainError) Unwrap() error { return ErrCorrupt }

// Record is one audit entry. Seq, PrevHash and Hash are set by storage;
// whatever the caller puts there is overwritten.
type Record struct {
	Seq      uint64            `json:"seq"`
	Time     time.Time         `json:"time"`  // UTC; set by storage when zero
	Actor    string            `json:"actor"` // Slack user id or "system"
	Action   string            `json:"action"`
	Subject  string            `json:"subject,omitempty"`
	RunID    string            `json:"run_id,omitempty"`
	Provider string            `json:"provider,omitempty"`
	Outcome  string            `json:"outcome,omitempty"`
	Details  map[string]string `json:"details,omitempty"`
	PrevHash string            `json:"prev_hash"`
	Hash     string            `json:"hash"`
}

// Item is a copied-out state value with its version. The caller owns Value.
type Item struct {
	Key     string
	Value   []byte
	Version uint64
}

// Options configures Open. The zero value is usable.
type Options struct {
	// Timeout is how long Open waits for the file lock before returning
	// ErrInUse; zero means DefaultTimeout.
	Timeout time.Duration
	// ReadOnly opens the file with a shared lock and refuses writes
	// (ErrReadOnly). The file must already exist.
	ReadOnly bool
}

// DefaultTimeout is the file-lock wait used when Options.Timeout is zero.
const DefaultTimeout = time.Second

func (o Options) validate() error {
	if o.Timeout < 0 {
		return fmt.Errorf("timeout %v: %w", o.Timeout, ErrInvalid)
	}
	return nil
}
