package storage

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"
)

func openTemp(t *testing.T) *DB {
	t.Helper()
	return openPath(t, filepath.Join(t.TempDir(), "warden.db"), Options{})
}

func openPath(t *testing.T, path string, opts Options) *DB {
	t.Helper()
	db, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// rawUpdate edits the closed data file with bbolt directly, as an
// attacker or a disk fault would.
func rawUpdate(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("bolt.Open: %v", err)
	}
	defer bdb.Close()
	if err := bdb.Update(fn); err != nil {
		t.Fatalf("raw update: %v", err)
	}
}

func appendN(t testing.TB, db *DB, n int, subjectOf func(i int) string) []Record {
	t.Helper()
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = Record{Actor: "U0ACTOR", Action: "session.revoke", Subject: subjectOf(i),
			Provider: "demo", Outcome: "ok", Details: map[string]string{"session": fmt.Sprint("s", i), "device": "laptop"}}
	}
	out, err := db.Append(context.Background(), recs...)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return out
}

// hashOf recomputes a record's hash from the documented definition:
// hex(SHA-256(prevHashBytes ‖ json.Marshal({"v":1, record with Hash ""}))).
func hashOf(t *testing.T, r Record) string {
	t.Helper()
	prev, err := hex.DecodeString(r.PrevHash)
	if err != nil || len(prev) != sha256.Size {
		t.Fatalf("prev_hash %q is not 32 hex bytes", r.PrevHash)
	}
	r.Hash = ""
	canonical, err := json.Marshal(struct {
		V int `json:"v"`
		Record
	}{1, r})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(append(prev, canonical...))
	return hex.EncodeToString(sum[:])
}

func TestAppendChainsAndIndexes(t *testing.T) {
	db := openTemp(t)
	ctx := t.Context()
	before := time.Now().UTC()
	got, err := db.Append(ctx,
		Record{Actor: "U1", Action: "session.revoke", Subject: "alice@example.com", Details: map[string]string{"z": "1", "a": "2"}},
		Record{Actor: "system", Action: "device.confirm", Subject: "bob@example.com"},
		Record{Actor: "U2", Action: "run.start", Subject: "alice@example.com", RunID: "r1",
			Time: time.Date(2030, 1, 2, 3, 4, 5, 6, time.FixedZone("X", 3600))},
	)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	if len(got) != 3 {
		t.Fatalf("Append returned %d records, want 3", len(got))
	}
	for i, r := range got {
		if r.Seq != uint64(i+1) {
			t.Errorf("record %d: Seq = %d, want %d", i, r.Seq, i+1)
		}
		if r.Time.Location() != time.UTC {
			t.Errorf("record %d: Time %v is not UTC", i, r.Time)
		}
		if want := hashOf(t, r); r.Hash != want {
			t.Errorf("record %d: Hash = %s, recomputed %s", i, r.Hash, want)
		}
	}
	if got[0].PrevHash != strings.Repeat("0", 64) {
		t.Errorf("first PrevHash = %q, want 64 zeros", got[0].PrevHash)
	}
	for i := 1; i < len(got); i++ {
		if got[i].PrevHash != got[i-1].Hash {
			t.Errorf("record %d PrevHash does not link to record %d", i, i-1)
		}
	}
	if got[0].Time.Before(before) {
		t.Errorf("zero Time was not set to now: %v", got[0].Time)
	}
	if want := time.Date(2030, 1, 2, 2, 4, 5, 6, time.UTC); !got[2].Time.Equal(want) {
		t.Errorf("explicit Time = %v, want %v", got[2].Time, want)
	}

	// A later Append continues the chain.
	more, err := db.Append(ctx, Record{Actor: "U1", Action: "audit.view", Subject: "alice@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if more[0].Seq != 4 || more[0].PrevHash != got[2].Hash {
		t.Errorf("second Append: seq %d prev %s, want seq 4 linked to %s", more[0].Seq, more[0].PrevHash, got[2].Hash)
	}
	all := append(got, more...)

	// Subject index: newest first, limit honoured, other subjects excluded.
	bySubj, err := db.AuditBySubject(ctx, "alice@example.com", 2)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Record{all[3], all[2]}, bySubj); diff != "" {
		t.Errorf("AuditBySubject(alice, 2) (-want +got):\n%s", diff)
	}
	bySubj, err = db.AuditBySubject(ctx, "alice@example.com", 0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Record{all[3], all[2], all[0]}, bySubj); diff != "" {
		t.Errorf("AuditBySubject(alice, all) (-want +got):\n%s", diff)
	}
	if r, err := db.AuditBySubject(ctx, "alice@example.co", 0); err != nil || len(r) != 0 {
		t.Errorf("AuditBySubject(prefix of a subject) = %d records, %v; want none", len(r), err)
	}

	// Time index: oldest first; the 2030 record sorts last.
	since, err := db.AuditSince(ctx, time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Record{all[0], all[1], all[3], all[2]}, since); diff != "" {
		t.Errorf("AuditSince(zero) (-want +got):\n%s", diff)
	}
	since, err = db.AuditSince(ctx, time.Date(2029, 1, 1, 0, 0, 0, 0, time.UTC), 10)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Record{all[2]}, since); diff != "" {
		t.Errorf("AuditSince(2029) (-want +got):\n%s", diff)
	}
	if since, _ := db.AuditSince(ctx, time.Time{}, 1); len(since) != 1 || since[0].Seq != 1 {
		t.Errorf("AuditSince(zero, 1) = %+v, want just seq 1", since)
	}
}

func TestAppendRejectsNULSubject(t *testing.T) {
	db := openTemp(t)
	if _, err := db.Append(t.Context(), Record{Actor: "U1", Action: "x", Subject: "a\x00b"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Append(NUL subject) = %v, want ErrInvalid", err)
	}
	if n, err := db.Verify(t.Context()); n != 0 || err != nil {
		t.Errorf("Verify after rejected append = %d, %v; want 0, nil", n, err)
	}
}

func TestAppendInvalidUTF8IsStoredAsHashed(t *testing.T) {
	db := openTemp(t)
	got, err := db.Append(t.Context(), Record{Actor: "U1\xff", Action: "x", Subject: "s\xfe", Details: map[string]string{"k\xff": "v\xff"}})
	if err != nil {
		t.Fatal(err)
	}
	read, err := db.AuditBySubject(t.Context(), "s\uFFFD", 1)
	if err != nil || len(read) != 1 {
		t.Fatalf("AuditBySubject = %v, %v", read, err)
	}
	if diff := cmp.Diff(got, read); diff != "" {
		t.Errorf("returned vs stored record (-append +read):\n%s", diff)
	}
	if _, err := db.Verify(t.Context()); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

func TestPutCreateTwiceConflicts(t *testing.T) {
	db := openTemp(t)
	ctx := t.Context()
	v, err := db.Put(ctx, Runs, "run-1", 0, []byte(`{"state":"running"}`))
	if err != nil || v != 1 {
		t.Fatalf("first create = %d, %v; want 1, nil", v, err)
	}
	if _, err := db.Put(ctx, Runs, "run-1", 0, []byte(`{"state":"dup"}`)); !errors.Is(err, ErrConflict) {
		t.Fatalf("second create = %v, want ErrConflict", err)
	}
	it, err := db.Get(ctx, Runs, "run-1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Item{Key: "run-1", Value: []byte(`{"state":"running"}`), Version: 1}, it); diff != "" {
		t.Errorf("after duplicate create (-want +got):\n%s", diff)
	}
}

func TestPutAndDeleteAreCompareAndSwap(t *testing.T) {
	db := openTemp(t)
	ctx := t.Context()
	if _, err := db.Put(ctx, Approvals, "a1", 1, []byte("x")); !errors.Is(err, ErrConflict) {
		t.Errorf("update of a missing key = %v, want ErrConflict", err)
	}
	v1, _ := db.Put(ctx, Approvals, "a1", 0, []byte("v1"))
	v2, err := db.Put(ctx, Approvals, "a1", v1, []byte("v2"))
	if err != nil || v2 != 2 {
		t.Fatalf("update at version 1 = %d, %v; want 2, nil", v2, err)
	}
	if _, err := db.Put(ctx, Approvals, "a1", v1, []byte("stale")); !errors.Is(err, ErrConflict) {
		t.Errorf("stale update = %v, want ErrConflict", err)
	}
	if err := db.Delete(ctx, Approvals, "a1", v1); !errors.Is(err, ErrConflict) {
		t.Errorf("stale delete = %v, want ErrConflict", err)
	}
	if it, _ := db.Get(ctx, Approvals, "a1"); string(it.Value) != "v2" || it.Version != 2 {
		t.Errorf("after stale writes: %q v%d, want v2 v2", it.Value, it.Version)
	}
	if err := db.Delete(ctx, Approvals, "a1", v2); err != nil {
		t.Fatalf("delete at current version: %v", err)
	}
	if _, err := db.Get(ctx, Approvals, "a1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after delete = %v, want ErrNotFound", err)
	}
	if err := db.Delete(ctx, Approvals, "a1", 2); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete of a missing key = %v, want ErrNotFound", err)
	}
	// Re-create after delete starts again at version 1.
	if v, err := db.Put(ctx, Approvals, "a1", 0, []byte("again")); err != nil || v != 1 {
		t.Errorf("re-create = %d, %v; want 1, nil", v, err)
	}
}

func TestPutValidatesArguments(t *testing.T) {
	db := openTemp(t)
	ctx := t.Context()
	for name, call := range map[string]func() error{
		"unknown bucket": func() error { _, err := db.Put(ctx, Bucket("audit"), "k", 0, nil); return err },
		"empty key":      func() error { _, err := db.Put(ctx, Runs, "", 0, nil); return err },
		"get unknown":    func() error { _, err := db.Get(ctx, Bucket("meta"), "schema_version"); return err },
		"list unknown":   func() error { _, err := db.List(ctx, Bucket("nope"), ""); return err },
	} {
		if err := call(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
}

func TestAuditCommittedWithState(t *testing.T) {
	db := openTemp(t)
	ctx := t.Context()
	rec := Record{Actor: "U1", Action: "run.create", Subject: "carol@example.com", RunID: "r1"}
	if _, err := db.Put(ctx, Runs, "r1", 0, []byte("{}"), rec); err != nil {
		t.Fatal(err)
	}
	// A redelivered create fails and must leave no audit record behind.
	if _, err := db.Put(ctx, Runs, "r1", 0, []byte("{}"), rec); !errors.Is(err, ErrConflict) {
		t.Fatalf("redelivered create = %v, want ErrConflict", err)
	}
	if err := db.Delete(ctx, Runs, "r1", 7, Record{Actor: "U1", Action: "run.delete", Subject: "carol@example.com"}); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale delete = %v, want ErrConflict", err)
	}
	// A put whose audit is invalid stores no state either.
	if _, err := db.Put(ctx, Runs, "r2", 0, []byte("{}"), Record{Actor: "U1", Action: "x", Subject: "bad\x00"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("put with invalid audit = %v, want ErrInvalid", err)
	}
	if _, err := db.Get(ctx, Runs, "r2"); !errors.Is(err, ErrNotFound) {
		t.Errorf("state written although its audit was rejected: %v", err)
	}
	got, err := db.AuditBySubject(ctx, "carol@example.com", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Action != "run.create" {
		t.Fatalf("audit for carol = %+v, want exactly the one run.create", got)
	}
	if err := db.Delete(ctx, Runs, "r1", 1, Record{Actor: "U1", Action: "run.delete", Subject: "carol@example.com"}); err != nil {
		t.Fatal(err)
	}
	if n, err := db.Verify(ctx); n != 2 || err != nil {
		t.Errorf("Verify = %d, %v; want 2 records, nil", n, err)
	}
}

func TestValuesAreCopiedOut(t *testing.T) {
	db := openTemp(t)
	ctx := t.Context()
	in := []byte(`{"device":"laptop"}`)
	if _, err := db.Put(ctx, Devices, "U1/fp1", 0, in); err != nil {
		t.Fatal(err)
	}
	in[2] = 'X' // the caller reuses its buffer
	it, err := db.Get(ctx, Devices, "U1/fp1")
	if err != nil {
		t.Fatal(err)
	}
	for i := range it.Value {
		it.Value[i] = 0
	}
	items, err := db.List(ctx, Devices, "U1/")
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 || string(items[0].Value) != `{"device":"laptop"}` {
		t.Fatalf("List after mutating returned slices = %+v", items)
	}
	items[0].Value[0] = '!'
	again, _ := db.Get(ctx, Devices, "U1/fp1")
	if string(again.Value) != `{"device":"laptop"}` {
		t.Errorf("stored value changed through a returned slice: %q", again.Value)
	}
}

func TestListByPrefixInKeyOrder(t *testing.T) {
	db := openTemp(t)
	ctx := t.Context()
	for _, k := range []string{"U2/b", "U1/b", "U1/a", "U10/a", "U1"} {
		if _, err := db.Put(ctx, Devices, k, 0, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	items, err := db.List(ctx, Devices, "U1/")
	if err != nil {
		t.Fatal(err)
	}
	want := []Item{{Key: "U1/a", Value: []byte("U1/a"), Version: 1}, {Key: "U1/b", Value: []byte("U1/b"), Version: 1}}
	if diff := cmp.Diff(want, items); diff != "" {
		t.Errorf("List(U1/) (-want +got):\n%s", diff)
	}
	all, _ := db.List(ctx, Devices, "")
	if len(all) != 5 {
		t.Errorf("List(\"\") = %d items, want 5", len(all))
	}
}

func TestCanceledContextWritesNothing(t *testing.T) {
	db := openTemp(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := db.Put(ctx, Runs, "r", 0, nil, Record{Actor: "U1", Action: "x"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Put = %v, want context.Canceled", err)
	}
	if _, err := db.Append(ctx, Record{Actor: "U1", Action: "x"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Append = %v, want context.Canceled", err)
	}
	if _, err := db.Verify(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Verify = %v, want context.Canceled", err)
	}
	if n, _ := db.Verify(t.Context()); n != 0 {
		t.Errorf("%d audit records written under a canceled context", n)
	}
}

func TestVerifyPassesOnGoodChainAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "warden.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, db, 30, func(i int) string { return fmt.Sprint("user", i%3) })
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openPath(t, path, Options{})
	appendN(t, db, 20, func(int) string { return "" })
	n, err := db.Verify(t.Context())
	if err != nil || n != 50 {
		t.Fatalf("Verify = %d, %v; want 50, nil", n, err)
	}
}

// corrupt builds a 10-record chain, closes it, applies edit to the raw
// audit bucket, reopens and runs Verify.
func corrupt(t *testing.T, edit func(t *testing.T, audit *bolt.Bucket)) (int, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "warden.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, db, 10, func(i int) string { return "alice@example.com" })
	if n, err := db.Verify(t.Context()); n != 10 || err != nil {
		t.Fatalf("Verify before tampering = %d, %v", n, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		edit(t, tx.Bucket(bucketAudit))
		return nil
	})
	db = openPath(t, path, Options{ReadOnly: true})
	return db.Verify(t.Context())
}

func wantBreakAt(t *testing.T, n int, err error, seq uint64) {
	t.Helper()
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Verify = %d, %v; want ErrCorrupt", n, err)
	}
	ce, ok := errors.AsType[*ChainError](err)
	if !ok {
		t.Fatalf("Verify error %v is not a *ChainError", err)
	}
	if ce.Seq != seq {
		t.Errorf("ChainError.Seq = %d (%s), want %d", ce.Seq, ce.Reason, seq)
	}
	if n != int(seq-1) {
		t.Errorf("Verify counted %d good records, want %d", n, seq-1)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("seq %d", seq)) {
		t.Errorf("error text %q does not name seq %d", err, seq)
	}
}

func TestVerifyDetectsOneFlippedByte(t *testing.T) {
	// Each case flips one byte of record 7's stored value.
	for name, pick := range map[string]func(v []byte) (int, byte){
		"actor letter": func(v []byte) (int, byte) {
			i := bytes.Index(v, []byte("U0ACTOR")) + 2
			return i, v[i] ^ 0x01
		},
		"key name case (decodes to the same struct)": func(v []byte) (int, byte) {
			i := bytes.Index(v, []byte(`"actor"`)) + 1
			return i, v[i] ^ 0x20
		},
		"time digit": func(v []byte) (int, byte) {
			i := bytes.Index(v, []byte(`"time":"`)) + len(`"time":"`) + 3
			if v[i] == '9' {
				return i, '8'
			}
			return i, v[i] + 1
		},
		"detail value": func(v []byte) (int, byte) {
			i := bytes.Index(v, []byte("laptop"))
			return i, 'L'
		},
		"stored hash digit": func(v []byte) (int, byte) {
			i := len(v) - 10
			if v[i] == '0' {
				return i, '1'
			}
			return i, '0'
		},
		"prev_hash digit": func(v []byte) (int, byte) {
			i := bytes.Index(v, []byte(`"prev_hash":"`)) + len(`"prev_hash":"`)
			if v[i] == '0' {
				return i, '1'
			}
			return i, '0'
		},
		"closing brace (no longer decodes)": func(v []byte) (int, byte) {
			return len(v) - 1, ']'
		},
	} {
		t.Run(name, func(t *testing.T) {
			n, err := corrupt(t, func(t *testing.T, audit *bolt.Bucket) {
				v := bytes.Clone(audit.Get(seqKey(7)))
				i, b := pick(v)
				if i < 0 || v[i] == b {
					t.Fatalf("test bug: no byte to flip in %s", v)
				}
				v[i] = b
				if err := audit.Put(seqKey(7), v); err != nil {
					t.Fatal(err)
				}
			})
			wantBreakAt(t, n, err, 7)
		})
	}
}

func TestVerifyDetectsDeletedAndReorderedRecords(t *testing.T) {
	t.Run("deleted middle", func(t *testing.T) {
		n, err := corrupt(t, func(t *testing.T, audit *bolt.Bucket) {
			if err := audit.Delete(seqKey(5)); err != nil {
				t.Fatal(err)
			}
		})
		wantBreakAt(t, n, err, 5)
	})
	t.Run("deleted last", func(t *testing.T) {
		n, err := corrupt(t, func(t *testing.T, audit *bolt.Bucket) {
			if err := audit.Delete(seqKey(10)); err != nil {
				t.Fatal(err)
			}
		})
		wantBreakAt(t, n, err, 10)
	})
	t.Run("deleted first", func(t *testing.T) {
		n, err := corrupt(t, func(t *testing.T, audit *bolt.Bucket) {
			if err := audit.Delete(seqKey(1)); err != nil {
				t.Fatal(err)
			}
		})
		wantBreakAt(t, n, err, 1)
	})
	t.Run("swapped", func(t *testing.T) {
		n, err := corrupt(t, func(t *testing.T, audit *bolt.Bucket) {
			a, b := bytes.Clone(audit.Get(seqKey(3))), bytes.Clone(audit.Get(seqKey(4)))
			if err := audit.Put(seqKey(3), b); err != nil {
				t.Fatal(err)
			}
			if err := audit.Put(seqKey(4), a); err != nil {
				t.Fatal(err)
			}
		})
		wantBreakAt(t, n, err, 3)
	})
	t.Run("renumbered to close the gap", func(t *testing.T) {
		// Delete 4 and move 5..10 down one key each: keys are contiguous
		// again, but the records' own seq and links are not.
		n, err := corrupt(t, func(t *testing.T, audit *bolt.Bucket) {
			for s := uint64(4); s < 10; s++ {
				if err := audit.Put(seqKey(s), bytes.Clone(audit.Get(seqKey(s+1)))); err != nil {
					t.Fatal(err)
				}
			}
			if err := audit.Delete(seqKey(10)); err != nil {
				t.Fatal(err)
			}
		})
		wantBreakAt(t, n, err, 4)
	})
}

func TestAppendAfterTamperStillDetected(t *testing.T) {
	path := filepath.Join(t.TempDir(), "warden.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, db, 3, func(int) string { return "" })
	db.Close()
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		a := tx.Bucket(bucketAudit)
		v := bytes.Clone(a.Get(seqKey(2)))
		v[bytes.Index(v, []byte("revoke"))] = 'R'
		return a.Put(seqKey(2), v)
	})
	db = openPath(t, path, Options{})
	appendN(t, db, 2, func(int) string { return "" })
	n, err := db.Verify(t.Context())
	wantBreakAt(t, n, err, 2)
}

func TestExportFilters(t *testing.T) {
	db := openTemp(t)
	ctx := t.Context()
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var recs []Record
	for i := range 12 {
		recs = append(recs, Record{Actor: "U1", Action: "step", Subject: []string{"alice", "bob", ""}[i%3],
			Time: base.Add(time.Duration(i) * time.Hour)})
	}
	written, err := db.Append(ctx, recs...)
	if err != nil {
		t.Fatal(err)
	}
	export := func(since time.Time, subject string) []Record {
		t.Helper()
		var buf bytes.Buffer
		n, err := db.Export(ctx, &buf, since, subject)
		if err != nil {
			t.Fatalf("Export(%v, %q): %v", since, subject, err)
		}
		var out []Record
		sc := bufio.NewScanner(&buf)
		for sc.Scan() {
			var r Record
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("export line %q: %v", sc.Text(), err)
			}
			out = append(out, r)
		}
		if n != len(out) {
			t.Errorf("Export returned count %d, wrote %d lines", n, len(out))
		}
		return out
	}
	pick := func(keep func(r Record) bool) []Record {
		var out []Record
		for _, r := range written {
			if keep(r) {
				out = append(out, r)
			}
		}
		return out
	}
	since := base.Add(6 * time.Hour)
	for name, tc := range map[string]struct {
		since   time.Time
		subject string
		want    []Record
	}{
		"all":          {want: written},
		"since":        {since: since, want: pick(func(r Record) bool { return !r.Time.Before(since) })},
		"subject":      {subject: "bob", want: pick(func(r Record) bool { return r.Subject == "bob" })},
		"both":         {since: since, subject: "alice", want: pick(func(r Record) bool { return r.Subject == "alice" && !r.Time.Before(since) })},
		"none match":   {subject: "carol"},
		"future since": {since: base.Add(100 * time.Hour)},
	} {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, export(tc.since, tc.subject)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestExportIsOfflineVerifiableAndPages(t *testing.T) {
	db := openTemp(t)
	n := 2*exportPage + 17 // crosses page boundaries
	appendN(t, db, n, func(i int) string { return []string{"alice", "bob"}[i%2] })
	var buf bytes.Buffer
	got, err := db.Export(t.Context(), &buf, time.Time{}, "")
	if err != nil || got != n {
		t.Fatalf("Export = %d, %v; want %d", got, err, n)
	}
	// Re-verify the export with nothing but sha256, as an auditor would.
	prev := make([]byte, sha256.Size)
	sc := bufio.NewScanner(&buf)
	lines := 0
	for sc.Scan() {
		l := sc.Bytes()
		hashHex := l[len(l)-66 : len(l)-2]
		h := sha256.New()
		h.Write(prev)
		h.Write(l[:len(l)-66])
		h.Write([]byte(`"}`))
		if hex.EncodeToString(h.Sum(nil)) != string(hashHex) {
			t.Fatalf("export line %d does not verify offline", lines+1)
		}
		prev, _ = hex.DecodeString(string(hashHex))
		lines++
	}
	if lines != n {
		t.Fatalf("export has %d lines, want %d", lines, n)
	}
	var sub bytes.Buffer
	if got, err := db.Export(t.Context(), &sub, time.Time{}, "bob"); err != nil || got != n/2 {
		t.Errorf("Export(bob) = %d, %v; want %d", got, err, n/2)
	}
	if got, err := db.Export(t.Context(), discard{}, time.Unix(1, 0), ""); err != nil || got != n {
		t.Errorf("Export(since 1970) = %d, %v; want %d", got, err, n)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func TestSchemaVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "warden.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketMeta).Get(keySchemaVersion)
		if binary.BigEndian.Uint64(v) != SchemaVersion {
			t.Errorf("stored schema version = %x, want %d", v, SchemaVersion)
		}
		return tx.Bucket(bucketMeta).Put(keySchemaVersion, binary.BigEndian.AppendUint64(nil, SchemaVersion+1))
	})
	for _, ro := range []bool{false, true} {
		_, err := Open(path, Options{ReadOnly: ro})
		if !errors.Is(err, ErrSchema) {
			t.Fatalf("Open(newer schema, readonly=%v) = %v, want ErrSchema", ro, err)
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("schema version %d", SchemaVersion+1)) {
			t.Errorf("error %q does not name the file's schema version", err)
		}
	}
	// The refused open released the lock: the file can be fixed and reopened.
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySchemaVersion, binary.BigEndian.AppendUint64(nil, SchemaVersion))
	})
	openPath(t, path, Options{})
}

func TestReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "warden.db")
	if _, err := Open(path, Options{ReadOnly: true}); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("read-only Open of a missing file = %v, want not-exist", err)
	}
	rawUpdate(t, path, func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("other")); return err })
	if _, err := Open(path, Options{ReadOnly: true}); !errors.Is(err, ErrSchema) {
		t.Errorf("read-only Open of a foreign bbolt file = %v, want ErrSchema", err)
	}
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, db, 3, func(int) string { return "alice" })
	db.Close()
	ro := openPath(t, path, Options{ReadOnly: true})
	if _, err := ro.Append(t.Context(), Record{Actor: "U1", Action: "x"}); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Append on read-only = %v, want ErrReadOnly", err)
	}
	if _, err := ro.Put(t.Context(), Runs, "r", 0, nil); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Put on read-only = %v, want ErrReadOnly", err)
	}
	if n, err := ro.Verify(t.Context()); n != 3 || err != nil {
		t.Errorf("Verify on read-only = %d, %v", n, err)
	}
	if r, err := ro.AuditBySubject(t.Context(), "alice", 1); err != nil || len(r) != 1 || r[0].Seq != 3 {
		t.Errorf("AuditBySubject on read-only = %+v, %v", r, err)
	}
}

func TestOptionsValidate(t *testing.T) {
	if _, err := Open(filepath.Join(t.TempDir(), "x.db"), Options{Timeout: -time.Second}); !errors.Is(err, ErrInvalid) {
		t.Errorf("negative timeout = %v, want ErrInvalid", err)
	}
}

const helperEnv = "WARDEN_STORAGE_HELPER_DB"

// TestHelperProcess is not a real test: TestSecondProcessIsRefused re-execs
// the test binary to run it as a second warden opening the same file.
// Exit codes: 0 opened, 3 refused with ErrInUse, 4 other error.
func TestHelperProcess(t *testing.T) {
	path := os.Getenv(helperEnv)
	if path == "" {
		t.Skip("helper process only")
	}
	db, err := Open(path, Options{Timeout: 200 * time.Millisecond, ReadOnly: os.Getenv(helperEnv+"_RO") != ""})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		if errors.Is(err, ErrInUse) {
			os.Exit(3)
		}
		os.Exit(4)
	}
	db.Close()
	os.Exit(0)
}

func TestSecondProcessIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "warden.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	run := func(readOnly bool) (int, string) {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHelperProcess$")
		cmd.Env = append(os.Environ(), helperEnv+"="+path)
		if readOnly {
			cmd.Env = append(cmd.Env, helperEnv+"_RO=1")
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		if ee, ok := errors.AsType[*exec.ExitError](err); ok {
			return ee.ExitCode(), stderr.String()
		}
		if err != nil {
			t.Fatalf("run helper: %v", err)
		}
		return 0, stderr.String()
	}
	for _, ro := range []bool{false, true} {
		code, msg := run(ro)
		if code != 3 {
			t.Fatalf("second process (readonly=%v) exit %d, want 3 (ErrInUse); stderr: %s", ro, code, msg)
		}
		if want := "data file in use by another warden: " + path; !strings.Contains(msg, want) {
			t.Errorf("second process error %q does not contain %q", msg, want)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if code, msg := run(false); code != 0 {
		t.Fatalf("after the first warden closed, second process exit %d: %s", code, msg)
	}
}
