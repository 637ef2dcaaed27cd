package storage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkAuditAppend appends one record per Append call: one bbolt
// Update, fsync on, as the bot does.
func BenchmarkAuditAppend(b *testing.B) {
	db, err := Open(filepath.Join(b.TempDir(), "warden.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	rec := Record{Actor: "U0ACTOR", Action: "session.revoke", Subject: "alice@example.com", RunID: "run-123",
		Provider: "okta", Outcome: "verified_gone", Details: map[string]string{"session": "s-1", "device": "MacBook"}}
	for b.Loop() {
		if _, err := db.Append(ctx, rec); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkVerify walks a pre-filled chain of verifyRecords records.
func BenchmarkVerify(b *testing.B) {
	const verifyRecords = 100_000
	db, err := Open(filepath.Join(b.TempDir(), "warden.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	batch := make([]Record, 1000)
	for i := 0; i < verifyRecords; i += len(batch) {
		for j := range batch {
			batch[j] = Record{Actor: "U0ACTOR", Action: "session.revoke", Subject: fmt.Sprintf("user%d@example.com", (i+j)%500),
				RunID: "run-123", Provider: "okta", Outcome: "verified_gone",
				Details: map[string]string{"session": fmt.Sprint("s-", i+j), "device": "MacBook"}}
		}
		if _, err := db.Append(ctx, batch...); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		n, err := db.Verify(ctx)
		if err != nil || n != verifyRecords {
			b.Fatalf("Verify = %d, %v", n, err)
		}
	}
	b.ReportMetric(float64(verifyRecords*b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkFsync measures the raw write+fsync latency of the disk under
// the temp dir, to put BenchmarkAuditAppend in context.
func BenchmarkFsync(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "fsync"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	page := make([]byte, 4096)
	start := time.Now()
	for b.Loop() {
		if _, err := f.WriteAt(page, 0); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/float64(b.N), "µs/fsync")
}
