package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sethvargo/go-envconfig"
)

func TestPlaybooksValidateAndList(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(good, []byte("playbooks:\n  - name: quick-revoke\n    description: revoke now\n    steps:\n      - kind: revoke_sessions\n        name: end all\n        scope: all\n"), 0o600)
	os.WriteFile(bad, []byte("playbooks:\n  - name: broken\n    steps:\n      - kind: revoke_sessions\n        name: end all\n        scope: all\n        wait_for: 5m\n"), 0o600)
	var out, errOut bytes.Buffer
	if code := run(t.Context(), []string{"playbooks", "validate", good}, envconfig.MapLookuper(nil), &out, &errOut); code != exitOK {
		t.Errorf("validate good file: exit %d, %s", code, errOut.String())
	}
	errOut.Reset()
	if code := run(t.Context(), []string{"playbooks", "validate", bad}, envconfig.MapLookuper(nil), &out, &errOut); code != exitFailure || !strings.Contains(errOut.String(), "line 7") {
		t.Errorf("validate bad file: exit %d, %q; want failure naming line 7", code, errOut.String())
	}
	out.Reset()
	if code := run(t.Context(), []string{"playbooks", "list"}, envconfig.MapLookuper(map[string]string{"WARDEN_PLAYBOOKS": good}), &out, &errOut); code != exitOK {
		t.Fatalf("list: exit %d", code)
	}
	for _, want := range []string{"quick-revoke", "contractor-offboarding", "approval → revoke_sessions", "new-device"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("list does not show %q:\n%s", want, out.String())
		}
	}
}
