package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
)

// The audit chain.
//
// Each record is stored under its sequence (8-byte big-endian, allocated
// with NextSequence) as versioned JSON: json.Marshal(storedRecord{V: 1,
// Record: r}). encoding/json writes struct fields in declaration order and
// map keys sorted, so the encoding is deterministic, and because Hash is the
// last field (never omitted) every stored value ends in
//
//	"hash":"<64 lowercase hex digits>"}
//
// The canonical encoding of a record is that same JSON with the hash value
// empty, i.e. the stored bytes with the 64 hex digits removed
// (…,"prev_hash":"…","hash":""}). Then
//
//	Hash = hex(SHA-256(prevHashBytes ‖ canonical))
//
// where prevHashBytes are the 32 raw bytes of the previous record's hash;
// the first record (seq 1) uses 32 zero bytes, and its PrevHash is 64 "0"
// characters. Seq, PrevHash and Hash are computed in the same transaction
// that allocates the sequence, so the chain has no gaps and no forks. An
// exported line (see Export) is exactly the stored value, so anyone can
// re-verify an export with sha256 alone.
//
// Strings are made valid UTF-8 (invalid bytes become U+FFFD) before
// hashing, so the stored record decodes back to exactly what was hashed.
// Records are never deleted or rewritten.

const recordV1 = 1

// storedRecord is the on-disk form of a Record: the Record's fields,
// preceded by a format version.
type storedRecord struct {
	V int `json:"v"`
	Record
}

var (
	zeroHash    [sha256.Size]byte
	zeroHashHex = strings.Repeat("0", 2*sha256.Size)
	// zeroHashHexBytes is zeroHashHex as bytes; never modified.
	zeroHashHexBytes = []byte(zeroHashHex)
	hashPrefix       = []byte(`"hash":"`)
	hashSuffix       = []byte(`"}`)
)

const hashTail = 2*sha256.Size + 2 // 64 hex digits + `"}`

func seqKey(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}

// subjectKey is subject ‖ 0x00 ‖ seq (8B BE).
func subjectKey(subject string, seq uint64) []byte {
	k := make([]byte, 0, len(subject)+9)
	k = append(k, subject...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, seq)
}

// timeKey is unixnano (8B BE) ‖ seq (8B BE). Times before 1970 sort as 1970.
func timeKey(t time.Time, seq uint64) []byte {
	n := t.UnixNano()
	if n < 0 {
		n = 0
	}
	k := make([]byte, 0, 16)
	k = binary.BigEndian.AppendUint64(k, uint64(n))
	return binary.BigEndian.AppendUint64(k, seq)
}

// checkRecords rejects records storage cannot index.
func checkRecords(recs []Record) error {
	for i := range recs {
		if strings.IndexByte(recs[i].Subject, 0) >= 0 {
			return fmt.Errorf("audit record %d: subject contains a NUL byte: %w", i, ErrInvalid)
		}
		if len(recs[i].Subject)+9 > maxKeySize {
			return fmt.Errorf("audit record %d: subject too long: %w", i, ErrInvalid)
		}
	}
	return nil
}

// Append writes audit records, in order, in their own transaction and
// returns them with Seq, Time, PrevHash and Hash filled in. The records
// are durable (fsynced) when it returns. It returns ErrInvalid for a
// subject containing a NUL byte and ErrReadOnly on a read-only DB.
func (db *DB) Append(ctx context.Context, recs ...Record) ([]Record, error) {
	if len(recs) == 0 {
		return nil, nil
	}
	if err := checkRecords(recs); err != nil {
		return nil, fmt.Errorf("append audit: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("append audit: %w", err)
	}
	var out []Record
	err := db.update(func(tx *bolt.Tx) error {
		var err error
		out, err = appendTx(tx, recs)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("append audit: %w", err)
	}
	return out, nil
}

// appendTx chains recs onto the audit bucket inside tx.
func appendTx(tx *bolt.Tx, recs []Record) ([]Record, error) {
	if len(recs) == 0 {
		return nil, nil
	}
	audit := tx.Bucket(bucketAudit)
	bySubject := tx.Bucket(bucketAuditBySubject)
	byTime := tx.Bucket(bucketAuditByTime)

	prev := zeroHash
	if k, v := audit.Cursor().Last(); k != nil {
		h, ok := storedHash(v)
		if !ok {
			return nil, &ChainError{Seq: binary.BigEndian.Uint64(k), Reason: "last record has no readable hash; refusing to extend the chain"}
		}
		prev = h
	}
	now := time.Now().UTC()
	out := make([]Record, len(recs))
	hasher := sha256.New()
	for i, r := range recs {
		seq, err := audit.NextSequence()
		if err != nil {
			return nil, fmt.Errorf("next sequence: %w", err)
		}
		r = sanitize(r)
		r.Seq = seq
		if r.Time.IsZero() {
			r.Time = now
		}
		r.Time = r.Time.UTC()
		r.PrevHash = hex.EncodeToString(prev[:])
		r.Hash = ""
		canonical, err := json.Marshal(storedRecord{V: recordV1, Record: r})
		if err != nil {
			return nil, fmt.Errorf("encode record: %w", err)
		}
		if !bytes.HasSuffix(canonical, []byte(`"hash":""}`)) {
			return nil, fmt.Errorf("encode record: unexpected canonical form")
		}
		hasher.Reset()
		hasher.Write(prev[:])
		hasher.Write(canonical)
		hasher.Sum(prev[:0])
		r.Hash = hex.EncodeToString(prev[:])

		stored := make([]byte, 0, len(canonical)+2*sha256.Size)
		stored = append(stored, canonical[:len(canonical)-2]...)
		stored = append(stored, r.Hash...)
		stored = append(stored, hashSuffix...)
		if err := audit.Put(seqKey(seq), stored); err != nil {
			return nil, fmt.Errorf("put record: %w", err)
		}
		if r.Subject != "" {
			if err := bySubject.Put(subjectKey(r.Subject, seq), nil); err != nil {
				return nil, fmt.Errorf("index subject: %w", err)
			}
		}
		if err := byTime.Put(timeKey(r.Time, seq), nil); err != nil {
			return nil, fmt.Errorf("index time: %w", err)
		}
		out[i] = r
	}
	return out, nil
}

// storedHash extracts the hash bytes from a stored record's fixed suffix.
func storedHash(v []byte) ([sha256.Size]byte, bool) {
	var h [sha256.Size]byte
	if !hasHashTail(v) {
		return h, false
	}
	if _, err := hex.Decode(h[:], v[len(v)-hashTail:len(v)-2]); err != nil {
		return h, false
	}
	return h, true
}

func hasHashTail(v []byte) bool {
	n := len(v)
	return n >= hashTail+len(hashPrefix) &&
		bytes.Equal(v[n-2:], hashSuffix) &&
		bytes.Equal(v[n-hashTail-len(hashPrefix):n-hashTail], hashPrefix)
}

// sanitize returns r with every string valid UTF-8, so that what is hashed
// is what decodes. The caller's Details map is not modified.
func sanitize(r Record) Record {
	fix := func(s *string) {
		if !utf8.ValidString(*s) {
			*s = strings.ToValidUTF8(*s, "\uFFFD")
		}
	}
	fix(&r.Actor)
	fix(&r.Action)
	fix(&r.Subject)
	fix(&r.RunID)
	fix(&r.Provider)
	fix(&r.Outcome)
	dirty := false
	for k, v := range r.Details {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			dirty = true
			break
		}
	}
	if dirty {
		d := make(map[string]string, len(r.Details))
		for k, v := range r.Details {
			fix(&k)
			fix(&v)
			d[k] = v
		}
		r.Details = d
	}
	return r
}

// decodeRecord decodes one stored record.
func decodeRecord(raw []byte) (Record, error) {
	var sr storedRecord
	if err := json.Unmarshal(raw, &sr); err != nil {
		return Record{}, fmt.Errorf("decode record: %w", err)
	}
	if sr.V != recordV1 {
		return Record{}, fmt.Errorf("decode record: unknown record version %d", sr.V)
	}
	return sr.Record, nil
}

// AuditBySubject returns the latest n records about subject, newest first
// (n <= 0: all of them). It uses the subject index.
func (db *DB) AuditBySubject(ctx context.Context, subject string, n int) ([]Record, error) {
	if subject == "" || strings.IndexByte(subject, 0) >= 0 {
		return nil, fmt.Errorf("audit by subject: subject %q: %w", subject, ErrInvalid)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("audit by subject: %w", err)
	}
	prefix := append([]byte(subject), 0)
	upper := append([]byte(subject), 1)
	var out []Record
	err := db.bolt.View(func(tx *bolt.Tx) error {
		idx, audit := bucket(tx, bucketAuditBySubject), bucket(tx, bucketAudit)
		if idx == nil || audit == nil {
			return nil
		}
		c := idx.Cursor()
		k, _ := c.Seek(upper)
		if k == nil {
			k, _ = c.Last()
		} else {
			k, _ = c.Prev()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix) && (n <= 0 || len(out) < n); k, _ = c.Prev() {
			if len(k) != len(prefix)+8 {
				continue
			}
			r, err := recordAt(audit, k[len(prefix):])
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("audit by subject: %w", err)
	}
	return out, nil
}

// AuditSince returns up to n records with Time >= since, oldest first
// (n <= 0: all of them). It uses the time index.
func (db *DB) AuditSince(ctx context.Context, since time.Time, n int) ([]Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("audit since: %w", err)
	}
	var out []Record
	err := db.bolt.View(func(tx *bolt.Tx) error {
		idx, audit := bucket(tx, bucketAuditByTime), bucket(tx, bucketAudit)
		if idx == nil || audit == nil {
			return nil
		}
		c := idx.Cursor()
		for k, _ := c.Seek(timeKey(since, 0)); k != nil && (n <= 0 || len(out) < n); k, _ = c.Next() {
			if len(k) != 16 {
				continue
			}
			r, err := recordAt(audit, k[8:])
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("audit since: %w", err)
	}
	return out, nil
}

// recordAt decodes the record stored under the 8-byte key seq.
func recordAt(audit *bolt.Bucket, seq []byte) (Record, error) {
	raw := audit.Get(seq)
	if raw == nil {
		return Record{}, fmt.Errorf("index points at missing seq %d: %w", binary.BigEndian.Uint64(seq), ErrCorrupt)
	}
	r, err := decodeRecord(raw)
	if err != nil {
		return Record{}, fmt.Errorf("seq %d: %w", binary.BigEndian.Uint64(seq), err)
	}
	return r, nil
}
