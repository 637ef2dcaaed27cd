package storage

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func sampleRecords() []Record {
	base := Record{Seq: 42, Time: time.Date(2026, 5, 6, 7, 8, 9, 123456789, time.UTC), Actor: "U0ACTOR",
		Action: "session.revoke", PrevHash: zeroHashHex, Hash: "ab" + zeroHashHex[2:]}
	var out []Record
	add := func(edit func(r *Record)) {
		r := base
		edit(&r)
		out = append(out, r)
	}
	add(func(r *Record) {})
	add(func(r *Record) { r.Seq = 1<<64 - 1 })
	add(func(r *Record) { r.Seq = 0; r.Time = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) })
	add(func(r *Record) {
		r.Subject, r.RunID, r.Provider, r.Outcome = "alice@example.com", "run-1", "okta", "verified_gone"
		r.Details = map[string]string{"b": "2", "a": "1", "ünïcødé": "日本語", "": ""}
	})
	add(func(r *Record) { r.Details = map[string]string{} })
	add(func(r *Record) { r.Actor = ""; r.Action = "" })
	add(func(r *Record) { r.Outcome = "needs <escaping> & \"quotes\" \\ \n \u2028" })
	add(func(r *Record) { r.Details = map[string]string{"k": "tab\there"} })
	add(func(r *Record) { r.Subject = "\uFFFD replacement" })
	return out
}

// TestParseCanonicalAgreesWithJSON checks the Verify fast path against
// encoding/json: on every sample record and on every one-byte mutation of
// them, whenever parseCanonical accepts, json.Unmarshal must accept too
// and give the same chain fields.
func TestParseCanonicalAgreesWithJSON(t *testing.T) {
	fast := 0
	check := func(val []byte) {
		t.Helper()
		f, ok := parseCanonical(val)
		if !ok {
			return
		}
		var sr storedRecord
		if err := json.Unmarshal(val, &sr); err != nil {
			t.Fatalf("fast path accepted %q, json.Unmarshal: %v", val, err)
		}
		if f.v != uint64(sr.V) || f.seq != sr.Seq || string(f.prevHash) != sr.PrevHash || string(f.hash) != sr.Hash {
			t.Fatalf("fast path on %q gave v=%d seq=%d prev=%s hash=%s; json gave %+v", val, f.v, f.seq, f.prevHash, f.hash, sr)
		}
	}
	for _, r := range sampleRecords() {
		val, err := json.Marshal(storedRecord{V: recordV1, Record: r})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := parseCanonical(val); ok {
			fast++
		}
		check(val)
		for i := range val {
			for _, b := range []byte{'"', '\\', ',', '}', '{', ':', '0', '9', 'a', ' ', 0, 0x80, val[i] ^ 0x20, val[i] ^ 0x01} {
				m := append([]byte(nil), val...)
				m[i] = b
				check(m)
			}
			check(val[:i])
		}
	}
	// Every sample without characters json escapes must take the fast path.
	if want := len(sampleRecords()) - 2; fast != want {
		t.Errorf("fast path accepted %d canonical samples, want %d", fast, want)
	}
}

// TestVerifyRecordsThatNeedEscaping covers Verify's json fallback.
func TestVerifyRecordsThatNeedEscaping(t *testing.T) {
	path := filepath.Join(t.TempDir(), "warden.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range []string{"plain", "<b>&amp;</b>", "quote\"back\\slash", "line\nbreak", "plain again"} {
		if _, err := db.Append(t.Context(), Record{Actor: "U1", Action: "note", Details: map[string]string{"text": s, "i": fmt.Sprint(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := db.Verify(t.Context()); n != 5 || err != nil {
		t.Fatalf("Verify = %d, %v; want 5, nil", n, err)
	}
	db.Close()
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		a := tx.Bucket(bucketAudit)
		v := append([]byte(nil), a.Get(seqKey(3))...)
		i := len(`{"v":1,"seq":3,"time":"2`)
		v[i] ^= 0x01 // still a digit: the year changes
		return a.Put(seqKey(3), v)
	})
	db = openPath(t, path, Options{ReadOnly: true})
	n, err := db.Verify(t.Context())
	wantBreakAt(t, n, err, 3)
}
