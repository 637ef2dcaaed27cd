package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sethvargo/go-envconfig"
	"github.com/warden-sec/warden/storage"
)

// writeAudit makes a data file holding the given records.
func writeAudit(t *testing.T, recs ...storage.Record) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "warden.db")
	db, err := storage.Open(path, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Append(t.Context(), recs...); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestAuditVerifyCatchesOneFlippedByte(t *testing.T) {
	path := writeAudit(t,
		storage.Record{Actor: "U0ALICE", Action: "command.list", Subject: "U0BOB"},
		storage.Record{Actor: "U0ALICE", Action: "session.revoke", Subject: "U0BOB", Provider: "demo", Outcome: "revoked-MARKER"},
		storage.Record{Actor: "system", Action: "run.finished", Subject: "U0BOB"},
	)
	var out, errOut bytes.Buffer
	if code := run(t.Context(), []string{"audit", "verify", "--data", path}, envconfig.MapLookuper(nil), &out, &errOut); code != exitOK {
		t.Fatalf("verify of an intact chain: exit %d, %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "3 records") {
		t.Errorf("verify output = %q, want it to count 3 records", out.String())
	}

	// Flip one byte inside the second record, on disk, as an attacker would.
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(raw, []byte("revoked-MARKER"))
	if i < 0 || bytes.Count(raw, []byte("revoked-MARKER")) != 1 {
		t.Fatalf("marker found %d times in the data file", bytes.Count(raw, []byte("revoked-MARKER")))
	}
	raw[i] = 'R'
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errOut.Reset()
	code := run(t.Context(), []string{"audit", "verify"}, envconfig.MapLookuper(map[string]string{"WARDEN_DATA": path}), &out, &errOut)
	if code == exitOK {
		t.Fatalf("verify passed a tampered chain: %s", out.String())
	}
	if !strings.Contains(errOut.String(), "record 2") {
		t.Errorf("verify error = %q, want it to name record 2", errOut.String())
	}
}

func TestAuditExportFilters(t *testing.T) {
	path := writeAudit(t,
		storage.Record{Actor: "U0ALICE", Action: "command.list", Subject: "U0BOB"},
		storage.Record{Actor: "U0ALICE", Action: "command.list", Subject: "U0CAROL"},
		storage.Record{Actor: "U0ALICE", Action: "session.revoke", Subject: "U0BOB"},
	)
	var out, errOut bytes.Buffer
	if code := run(t.Context(), []string{"audit", "export", "--data", path, "--subject", "U0BOB", "--since", "1h"}, envconfig.MapLookuper(nil), &out, &errOut); code != exitOK {
		t.Fatalf("export: exit %d, %s", code, errOut.String())
	}
	var got []storage.Record
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var r storage.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("export line is not JSON: %q", sc.Text())
		}
		got = append(got, r)
	}
	if len(got) != 2 || got[0].Seq != 1 || got[1].Seq != 3 || got[0].Hash == "" {
		t.Errorf("export for U0BOB = %+v, want records 1 and 3 with hashes", got)
	}
	if code := run(t.Context(), []string{"audit", "export", "--data", path, "--since", "yesterday"}, envconfig.MapLookuper(nil), &out, &errOut); code != exitUsage {
		t.Errorf("bad --since: exit %d, want %d", code, exitUsage)
	}
}

func TestAuditRefusedWhileServeHoldsTheFile(t *testing.T) {
	path := writeAudit(t, storage.Record{Actor: "system", Action: "test"})
	db, err := storage.Open(path, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var out, errOut bytes.Buffer
	code := run(t.Context(), []string{"audit", "verify", "--data", path}, envconfig.MapLookuper(nil), &out, &errOut)
	if code == exitOK || !strings.Contains(errOut.String(), "in use by another warden") {
		t.Errorf("verify while the file is held: exit %d, %q", code, errOut.String())
	}
}
