package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// verifyBatch is how many consecutive records one Verify worker checks
// at a time.
const verifyBatch = 1024

// Verify walks the audit chain in sequence order and returns the number of
// records that verified. For each record it checks that the key is the
// next sequence (contiguous from 1), that the value decodes as a known
// record version whose Seq equals its key, that PrevHash is the previous
// record's hash, and that SHA-256(prev ‖ canonical) equals the stored hash.
// It also checks that the chain ends at the last sequence ever allocated,
// so a truncated tail is caught.
//
// On the first break it returns a *ChainError naming that sequence
// (errors.Is(err, ErrCorrupt)). It returns ctx's error when ctx ends.
//
// One goroutine walks the keys inside a single read transaction and hands
// batches of values (which stay valid until the transaction ends) to
// GOMAXPROCS workers that decode and hash them; every check of record n
// needs only its own bytes and record n-1's, so batches are independent.
// The break reported is the lowest failing sequence.
func (db *DB) Verify(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("verify audit: %w", err)
	}
	var checked uint64
	err := db.bolt.View(func(tx *bolt.Tx) error {
		audit := bucket(tx, bucketAudit)
		if audit == nil {
			return nil
		}
		v := newVerifier(runtime.GOMAXPROCS(0))
		err := v.walk(ctx, audit)
		first := v.wait()
		if err != nil {
			return err
		}
		if first != nil {
			checked = first.Seq - 1
			return first
		}
		checked = v.last
		if last := audit.Sequence(); last != checked {
			return &ChainError{Seq: checked + 1, Reason: fmt.Sprintf("chain ends at seq %d but %d records were written", checked, last)}
		}
		return nil
	})
	if err != nil {
		return int(checked), fmt.Errorf("verify audit: %w", err)
	}
	return int(checked), nil
}

// batch is a run of consecutive records: first is the sequence of vals[0],
// prev the stored value of record first-1 (nil when first is 1).
type batch struct {
	first uint64
	prev  []byte
	vals  [][]byte
}

type verifier struct {
	jobs chan batch
	wg   sync.WaitGroup
	last uint64 // last sequence walked; written by walk only

	mu    sync.Mutex
	first *ChainError // lowest break found so far
	bad   atomic.Uint64
}

func newVerifier(workers int) *verifier {
	v := &verifier{jobs: make(chan batch, workers)}
	v.bad.Store(math.MaxUint64)
	for range workers {
		v.wg.Go(v.work)
	}
	return v
}

// report records a break, keeping the lowest sequence.
func (v *verifier) report(e *ChainError) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.first == nil || e.Seq < v.first.Seq {
		v.first = e
		v.bad.Store(e.Seq)
	}
}

// wait closes the job queue, waits for the workers and returns the lowest
// break, if any.
func (v *verifier) wait() *ChainError {
	close(v.jobs)
	v.wg.Wait()
	return v.first
}

// walk checks that keys run 1, 2, 3… and queues the values in batches.
func (v *verifier) walk(ctx context.Context, audit *bolt.Bucket) error {
	var (
		want uint64 = 1
		prev []byte
		cur  = batch{first: 1, vals: make([][]byte, 0, verifyBatch)}
	)
	flush := func() error {
		if len(cur.vals) == 0 {
			return nil
		}
		select {
		case v.jobs <- cur:
		case <-ctx.Done():
			return ctx.Err()
		}
		cur = batch{first: want, prev: prev, vals: make([][]byte, 0, verifyBatch)}
		return nil
	}
	c := audit.Cursor()
	for k, val := c.First(); k != nil; k, val = c.Next() {
		if want > v.bad.Load() {
			break // a lower break is already known
		}
		if len(k) != 8 {
			v.report(&ChainError{Seq: want, Reason: fmt.Sprintf("malformed key of %d bytes", len(k))})
			break
		}
		if got := binary.BigEndian.Uint64(k); got != want {
			v.report(&ChainError{Seq: want, Reason: fmt.Sprintf("record missing (next key is seq %d)", got)})
			break
		}
		cur.vals = append(cur.vals, val)
		prev = val
		v.last = want
		want++
		if len(cur.vals) == verifyBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	return ctx.Err()
}

// work checks batches until the queue closes.
func (v *verifier) work() {
	var (
		sr     storedRecord
		hasher = sha256.New()
	)
	for b := range v.jobs {
		if b.first > v.bad.Load() {
			continue
		}
		prev := b.prev
		for i, val := range b.vals {
			if e := checkRecord(b.first+uint64(i), val, prev, &sr, hasher); e != nil {
				v.report(e)
				break
			}
			prev = val
		}
	}
}

// checkRecord verifies the stored value of record seq against the stored
// value of record seq-1 (prev; nil for seq 1). sr and hasher are reused
// scratch space.
func checkRecord(seq uint64, val, prev []byte, sr *storedRecord, hasher hash.Hash) *ChainError {
	prevHash, prevHex := zeroHash, zeroHashHexBytes
	if prev != nil {
		h, ok := storedHash(prev)
		if !ok {
			return &ChainError{Seq: seq - 1, Reason: "hash field is not in canonical form"}
		}
		prevHash, prevHex = h, prev[len(prev)-hashTail:len(prev)-2]
	}
	f, ok := parseCanonical(val)
	if !ok {
		// Not in the layout we write: decode it properly, so that a record
		// that merely needed escaping still verifies and one that does not
		// decode is reported as such.
		details := sr.Details
		clear(details)
		*sr = storedRecord{Record: Record{Details: details}}
		if err := json.Unmarshal(val, sr); err != nil {
			return &ChainError{Seq: seq, Reason: "record does not decode: " + err.Error()}
		}
		f = chainFields{v: uint64(sr.V), seq: sr.Seq, prevHash: []byte(sr.PrevHash), hash: []byte(sr.Hash)}
	}
	if f.v != recordV1 {
		return &ChainError{Seq: seq, Reason: fmt.Sprintf("unknown record version %d", f.v)}
	}
	if f.seq != seq {
		return &ChainError{Seq: seq, Reason: fmt.Sprintf("record claims seq %d", f.seq)}
	}
	if !bytes.Equal(f.prevHash, prevHex) {
		return &ChainError{Seq: seq, Reason: "prev_hash does not match the previous record's hash"}
	}
	h, ok := storedHash(val)
	if !ok || !bytes.Equal(f.hash, val[len(val)-hashTail:len(val)-2]) {
		return &ChainError{Seq: seq, Reason: "hash field is not in canonical form"}
	}
	var sum [sha256.Size]byte
	hasher.Reset()
	hasher.Write(prevHash[:])
	hasher.Write(val[:len(val)-hashTail])
	hasher.Write(hashSuffix)
	hasher.Sum(sum[:0])
	if sum != h {
		return &ChainError{Seq: seq, Reason: "hash mismatch: record contents changed"}
	}
	return nil
}

// exportPage is how many records Export reads per read transaction; the
// transaction is closed before the page is written to w.
const exportPage = 1024

// Export writes audit records as JSON Lines to w and returns how many it
// wrote. Each line is the stored record exactly as hashed (the Record's
// fields plus "v", the format version), so an export can be re-verified
// offline. since (zero: all) keeps records with Time >= since, using the
// time index, oldest first; subject ("": all) keeps records about
// subject, using the subject index, in sequence order. With neither, the
// whole chain is written in sequence order. No transaction is held while
// writing to w.
func (db *DB) Export(ctx context.Context, w io.Writer, since time.Time, subject string) (int, error) {
	if bytes.IndexByte([]byte(subject), 0) >= 0 {
		return 0, fmt.Errorf("export audit: subject: %w", ErrInvalid)
	}
	var (
		pager pageFunc
		after []byte // last index key emitted; nil before the first page
	)
	switch {
	case subject != "":
		prefix := append([]byte(subject), 0)
		pager = func(tx *bolt.Tx, after []byte) ([][]byte, []byte, bool, error) {
			return indexPage(tx, bucketAuditBySubject, prefix, prefix, after, 8, since)
		}
	case !since.IsZero():
		pager = func(tx *bolt.Tx, after []byte) ([][]byte, []byte, bool, error) {
			return indexPage(tx, bucketAuditByTime, timeKey(since, 0), nil, after, 8, time.Time{})
		}
	default:
		pager = chainPage
	}
	written := 0
	for {
		if err := ctx.Err(); err != nil {
			return written, fmt.Errorf("export audit: %w", err)
		}
		var (
			lines [][]byte
			done  bool
		)
		err := db.bolt.View(func(tx *bolt.Tx) error {
			var err error
			lines, after, done, err = pager(tx, after)
			return err
		})
		if err != nil {
			return written, fmt.Errorf("export audit: %w", err)
		}
		for _, l := range lines {
			if _, err := w.Write(l); err != nil {
				return written, fmt.Errorf("export audit: write: %w", err)
			}
			written++
		}
		if done {
			return written, nil
		}
	}
}

// pageFunc reads the next page (at most exportPage index entries) of
// export lines after the key after (nil: from the start) and returns them
// with the last key read and whether the range is exhausted.
type pageFunc func(tx *bolt.Tx, after []byte) (lines [][]byte, last []byte, done bool, err error)

// line copies a stored record out as one JSON Lines line.
func line(v []byte) []byte {
	l := make([]byte, len(v)+1)
	copy(l, v)
	l[len(v)] = '\n'
	return l
}

// chainPage pages through the audit bucket in sequence order.
func chainPage(tx *bolt.Tx, after []byte) ([][]byte, []byte, bool, error) {
	audit := bucket(tx, bucketAudit)
	if audit == nil {
		return nil, after, true, nil
	}
	c := audit.Cursor()
	var k, v []byte
	if after == nil {
		k, v = c.First()
	} else if k, v = c.Seek(after); k != nil && bytes.Equal(k, after) {
		k, v = c.Next()
	}
	var lines [][]byte
	for ; k != nil && len(lines) < exportPage; k, v = c.Next() {
		lines = append(lines, line(v))
		after = bytes.Clone(k)
	}
	return lines, after, k == nil, nil
}

// indexPage pages through an index bucket from start (keys must begin with
// prefix when prefix is non-nil), resolving the trailing seqLen bytes of
// each key to an audit record. A non-zero since drops older records.
func indexPage(tx *bolt.Tx, index, start, prefix, after []byte, seqLen int, since time.Time) ([][]byte, []byte, bool, error) {
	idx, audit := bucket(tx, index), bucket(tx, bucketAudit)
	if idx == nil || audit == nil {
		return nil, after, true, nil
	}
	c := idx.Cursor()
	var k []byte
	if after == nil {
		k, _ = c.Seek(start)
	} else if k, _ = c.Seek(after); k != nil && bytes.Equal(k, after) {
		k, _ = c.Next()
	}
	var lines [][]byte
	for scanned := 0; ; k, _ = c.Next() {
		if k == nil || (prefix != nil && !bytes.HasPrefix(k, prefix)) {
			return lines, after, true, nil
		}
		if scanned == exportPage {
			return lines, after, false, nil
		}
		scanned++
		after = bytes.Clone(k)
		if len(k) < seqLen || (prefix != nil && len(k) != len(prefix)+seqLen) {
			continue
		}
		seq := k[len(k)-seqLen:]
		v := audit.Get(seq)
		if v == nil {
			return nil, nil, false, fmt.Errorf("index points at missing seq %d: %w", binary.BigEndian.Uint64(seq), ErrCorrupt)
		}
		if !since.IsZero() {
			var t struct {
				Time time.Time `json:"time"`
			}
			if err := json.Unmarshal(v, &t); err != nil {
				return nil, nil, false, fmt.Errorf("seq %d: decode record: %w", binary.BigEndian.Uint64(seq), err)
			}
			if t.Time.Before(since) {
				continue
			}
		}
		lines = append(lines, line(v))
	}
}
