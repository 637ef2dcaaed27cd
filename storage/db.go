package storage

import (
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// DB is an open Warden data file. It is safe for concurrent use.
type DB struct {
	bolt     *bolt.DB
	path     string
	readOnly bool
}

// Open opens (read-write: creating) the bbolt file at path, creates every
// bucket and checks the schema version.
//
// It returns an error wrapping ErrInUse when the file lock cannot be had
// within opts.Timeout (another warden holds the file; note that a read-only
// open takes a shared lock, so it is refused too while a serve holds the
// exclusive one), and one wrapping ErrSchema when the file was written by a
// newer schema.
func Open(path string, opts Options) (*DB, error) {
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("open data file: %w", err)
	}
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout, ReadOnly: opts.ReadOnly})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("%w: %s", ErrInUse, path)
		}
		return nil, fmt.Errorf("open data file %s: %w", path, err)
	}
	db := &DB{bolt: bdb, path: path, readOnly: opts.ReadOnly}
	if opts.ReadOnly {
		err = bdb.View(func(tx *bolt.Tx) error { return checkSchema(tx, path) })
	} else {
		err = bdb.Update(func(tx *bolt.Tx) error { return initSchema(tx, path) })
	}
	if err != nil {
		_ = bdb.Close()
		return nil, fmt.Errorf("open data file: %w", err)
	}
	return db, nil
}

// checkSchema reads the schema version of a read-only file.
func checkSchema(tx *bolt.Tx, path string) error {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return fmt.Errorf("%s has no meta bucket (not a warden data file): %w", path, ErrSchema)
	}
	_, err := schemaVersion(meta, path)
	return err
}

// initSchema creates every bucket and records the schema version.
func initSchema(tx *bolt.Tx, path string) error {
	meta, err := tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return fmt.Errorf("create bucket meta: %w", err)
	}
	v, err := schemaVersion(meta, path)
	if err != nil {
		return err
	}
	for _, name := range allBuckets() {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	// Version 1 is the first layout: there is nothing to migrate yet. A
	// future version adds its migration here, keyed on v.
	if v != SchemaVersion {
		var buf [8]byte
		binary.BigEndian.PutUint64(buf[:], SchemaVersion)
		if err := meta.Put(keySchemaVersion, buf[:]); err != nil {
			return fmt.Errorf("write schema version: %w", err)
		}
	}
	return nil
}

// schemaVersion returns the stored version (0 when unset) and refuses a
// version newer than SchemaVersion.
func schemaVersion(meta *bolt.Bucket, path string) (uint64, error) {
	raw := meta.Get(keySchemaVersion)
	if raw == nil {
		return 0, nil
	}
	if len(raw) != 8 {
		return 0, fmt.Errorf("%s: schema version is %d bytes, want 8: %w", path, len(raw), ErrSchema)
	}
	v := binary.BigEndian.Uint64(raw)
	if v > SchemaVersion {
		return 0, fmt.Errorf("%s has schema version %d, this warden supports up to %d (upgrade warden): %w",
			path, v, SchemaVersion, ErrSchema)
	}
	return v, nil
}

// Close releases the file and its lock.
func (db *DB) Close() error {
	if err := db.bolt.Close(); err != nil {
		return fmt.Errorf("close data file: %w", err)
	}
	return nil
}

// Path returns the file path given to Open.
func (db *DB) Path() string { return db.path }

// update runs fn in a read-write transaction, mapping bbolt's read-only
// error to ErrReadOnly.
func (db *DB) update(fn func(tx *bolt.Tx) error) error {
	if db.readOnly {
		return ErrReadOnly
	}
	err := db.bolt.Update(fn)
	if errors.Is(err, berrors.ErrDatabaseReadOnly) {
		return ErrReadOnly
	}
	return err
}

// bucket returns a bucket that may be missing in an old read-only file;
// callers treat nil as empty.
func bucket(tx *bolt.Tx, name []byte) *bolt.Bucket { return tx.Bucket(name) }
