package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// State values are stored in a small versioned envelope:
//
//	byte 0      envelope format (envelopeV1)
//	bytes 1..8  the item's version, big-endian uint64 (1 on create, +1 per Put)
//	bytes 9..   the caller's value (Warden's callers store JSON)
const (
	envelopeV1     byte = 1
	envelopeHeader      = 9
	maxKeySize          = bolt.MaxKeySize
)

func encodeEnvelope(version uint64, value []byte) []byte {
	buf := make([]byte, envelopeHeader+len(value))
	buf[0] = envelopeV1
	binary.BigEndian.PutUint64(buf[1:envelopeHeader], version)
	copy(buf[envelopeHeader:], value)
	return buf
}

// decodeEnvelope returns the version and a slice of raw aliasing it; the
// caller copies before leaving the transaction.
func decodeEnvelope(raw []byte) (uint64, []byte, error) {
	if len(raw) < envelopeHeader || raw[0] != envelopeV1 {
		return 0, nil, fmt.Errorf("decode value: unknown envelope (%d bytes)", len(raw))
	}
	return binary.BigEndian.Uint64(raw[1:envelopeHeader]), raw[envelopeHeader:], nil
}

func checkKey(b Bucket, key string) error {
	if !validBucket(b) {
		return fmt.Errorf("bucket %q: %w", b, ErrInvalid)
	}
	if key == "" || len(key) > maxKeySize {
		return fmt.Errorf("key of %d bytes: %w", len(key), ErrInvalid)
	}
	return nil
}

// Get returns a copy of the value stored under key, with its version. It
// returns ErrNotFound when the key is absent and ErrInvalid for an unknown
// bucket or an empty key.
func (db *DB) Get(ctx context.Context, b Bucket, key string) (Item, error) {
	if err := checkKey(b, key); err != nil {
		return Item{}, fmt.Errorf("get: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return Item{}, fmt.Errorf("get: %w", err)
	}
	var it Item
	err := db.bolt.View(func(tx *bolt.Tx) error {
		bk := bucket(tx, []byte(b))
		if bk == nil {
			return ErrNotFound
		}
		raw := bk.Get([]byte(key))
		if raw == nil {
			return ErrNotFound
		}
		v, val, err := decodeEnvelope(raw)
		if err != nil {
			return err
		}
		it = Item{Key: key, Value: bytes.Clone(val), Version: v}
		return nil
	})
	if err != nil {
		return Item{}, fmt.Errorf("get %s/%s: %w", b, key, err)
	}
	return it, nil
}

// Put stores value under key when the stored version equals expect (0: the
// key must not exist, so a redelivered create fails) and appends audit in
// the same transaction: either both are committed or neither is. It
// returns the new version (expect+1), ErrConflict when the version does
// not match, ErrInvalid for a bad bucket/key/record and ErrReadOnly on a
// read-only DB.
func (db *DB) Put(ctx context.Context, b Bucket, key string, expect uint64, value []byte, audit ...Record) (uint64, error) {
	if err := checkKey(b, key); err != nil {
		return 0, fmt.Errorf("put: %w", err)
	}
	if err := checkRecords(audit); err != nil {
		return 0, fmt.Errorf("put: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("put: %w", err)
	}
	next := expect + 1
	env := encodeEnvelope(next, value)
	err := db.update(func(tx *bolt.Tx) error {
		bk := tx.Bucket([]byte(b))
		cur, err := currentVersion(bk, key)
		if err != nil {
			return err
		}
		if cur != expect {
			return fmt.Errorf("stored version %d, expected %d: %w", cur, expect, ErrConflict)
		}
		if err := bk.Put([]byte(key), env); err != nil {
			return err
		}
		_, err = appendTx(tx, audit)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("put %s/%s: %w", b, key, err)
	}
	return next, nil
}

// Delete removes key when its stored version equals expect, and appends
// audit in the same transaction. It returns ErrNotFound when the key is
// absent and ErrConflict when the version does not match.
func (db *DB) Delete(ctx context.Context, b Bucket, key string, expect uint64, audit ...Record) error {
	if err := checkKey(b, key); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	if err := checkRecords(audit); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	err := db.update(func(tx *bolt.Tx) error {
		bk := tx.Bucket([]byte(b))
		cur, err := currentVersion(bk, key)
		if err != nil {
			return err
		}
		if cur == 0 {
			return ErrNotFound
		}
		if cur != expect {
			return fmt.Errorf("stored version %d, expected %d: %w", cur, expect, ErrConflict)
		}
		if err := bk.Delete([]byte(key)); err != nil {
			return err
		}
		_, err = appendTx(tx, audit)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete %s/%s: %w", b, key, err)
	}
	return nil
}

// currentVersion returns the stored version of key, 0 when absent.
func currentVersion(bk *bolt.Bucket, key string) (uint64, error) {
	raw := bk.Get([]byte(key))
	if raw == nil {
		return 0, nil
	}
	v, _, err := decodeEnvelope(raw)
	return v, err
}

// List returns a copy of every item whose key starts with prefix, in key
// order ("" lists the whole bucket).
func (db *DB) List(ctx context.Context, b Bucket, prefix string) ([]Item, error) {
	if !validBucket(b) {
		return nil, fmt.Errorf("list: bucket %q: %w", b, ErrInvalid)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	var out []Item
	err := db.bolt.View(func(tx *bolt.Tx) error {
		bk := bucket(tx, []byte(b))
		if bk == nil {
			return nil
		}
		p := []byte(prefix)
		c := bk.Cursor()
		for k, raw := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, raw = c.Next() {
			v, val, err := decodeEnvelope(raw)
			if err != nil {
				return fmt.Errorf("key %q: %w", k, err)
			}
			out = append(out, Item{Key: string(k), Value: bytes.Clone(val), Version: v})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", b, err)
	}
	return out, nil
}
