package commands

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	tests := []struct {
		text string
		want Command
	}{
		{"", Command{Verb: VerbHelp}},
		{"help", Command{Verb: VerbHelp}},
		{"  HELP  ", Command{Verb: VerbHelp}},
		{"mine", Command{Verb: VerbMine}},
		{"list <@U0ALICE|alice>", Command{Verb: VerbList, Users: []UserRef{{ID: "U0ALICE"}}}},
		{"list <@W0ALICE>", Command{Verb: VerbList, Users: []UserRef{{ID: "W0ALICE"}}}},
		{"list Bob@Example.com", Command{Verb: VerbList, Users: []UserRef{{Email: "bob@example.com"}}}},
		{"list <mailto:bob@example.com|bob@example.com>", Command{Verb: VerbList, Users: []UserRef{{Email: "bob@example.com"}}}},
		{"revoke <@U0BOB|bob> all", Command{Verb: VerbRevoke, Users: []UserRef{{ID: "U0BOB"}}, Targets: []string{"all"}}},
		{`revoke <@U0BOB> <@U0CAROL> all --dry-run "phished via fake SSO page"`, Command{
			Verb: VerbRevoke, Users: []UserRef{{ID: "U0BOB"}, {ID: "U0CAROL"}}, Targets: []string{"all"},
			DryRun: true, Reason: "phished via fake SSO page"}},
		{"revoke <@U0BOB> okta:102abc kratos:5f3a-9 laptop stolen", Command{
			Verb: VerbRevoke, Users: []UserRef{{ID: "U0BOB"}}, Targets: []string{"okta:102abc", "kratos:5f3a-9"},
			Reason: "laptop stolen"}},
		{"revoke <@U0BOB> <@U0BOB> all", Command{Verb: VerbRevoke, Users: []UserRef{{ID: "U0BOB"}}, Targets: []string{"all"}}},
		{"revoke --dry-run <@U0BOB> all", Command{Verb: VerbRevoke, Users: []UserRef{{ID: "U0BOB"}}, Targets: []string{"all"}, DryRun: true}},
		{"offboard <@U0DAVE> contract ended", Command{Verb: VerbOffboard, Users: []UserRef{{ID: "U0DAVE"}}, Reason: "contract ended"}},
		{"offboard <@U0DAVE> “contract ended”", Command{Verb: VerbOffboard, Users: []UserRef{{ID: "U0DAVE"}}, Reason: "contract ended"}},
		{"status 3f2a9c1e-77aa", Command{Verb: VerbStatus, RunID: "3f2a9c1e-77aa"}},
		{"audit <@U0BOB>", Command{Verb: VerbAudit, Users: []UserRef{{ID: "U0BOB"}}}},
		{"report", Command{Verb: VerbReport}},
		// Slack escapes &, < and > in typed text.
		{"offboard <@U0DAVE> R&amp;D &lt;contract&gt; ended", Command{Verb: VerbOffboard, Users: []UserRef{{ID: "U0DAVE"}}, Reason: "R&D <contract> ended"}},
	}
	for _, tt := range tests {
		got, err := Parse(tt.text)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.text, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Parse(%q) (-want +got):\n%s", tt.text, diff)
		}
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		text, wantIn string
	}{
		{"frobnicate", "Unknown command"},
		{"list", "Usage: `/sessions list @user`"},
		{"list <@U0A> <@U0B>", "exactly one"},
		{"list @bob", "pick them from Slack's list"},
		{"list not-an-email@", "not an email"},
		{"mine <@U0BOB>", "takes no arguments"},
		{"revoke <@U0BOB>", "Say `all`"},
		{"revoke all", "at least one person"},
		{"revoke <@U0BOB> all --force", "Unknown flag"},
		{"revoke <@U0A> <@U0B> okta:1", "one person at a time"},
		{"revoke <@U0BOB> all \"unclosed", "not closed"},
		{"status ../../etc", "one run id"},
		{"revoke <@U0BOB> all " + strings.Repeat("x", 600), "under 500"},
		{strings.Repeat("a", 3000), "too long"},
		{"\xff\xfe", "not valid text"},
		{`"list" <@U0BOB>`, "Unknown command"},
	}
	for _, tt := range tests {
		_, err := Parse(tt.text)
		if !errors.Is(err, ErrUsage) {
			t.Errorf("Parse(%q) error = %v, want ErrUsage", shorten(tt.text, 40), err)
			continue
		}
		if !strings.Contains(err.Error(), tt.wantIn) {
			t.Errorf("Parse(%q) = %q, want it to contain %q", shorten(tt.text, 40), err, tt.wantIn)
		}
		if strings.Contains(err.Error(), "\n") || len(err.Error()) > 300 {
			t.Errorf("Parse(%q) error is not one short line: %q", shorten(tt.text, 40), err)
		}
	}
}

func TestParseReasonStripsControlCharacters(t *testing.T) {
	got, err := Parse("offboard <@U0DAVE> done\x07\x1b[31m now")
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(got.Reason, "\x07\x1b") {
		t.Errorf("reason kept control characters: %q", got.Reason)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"", "help", "list <@U0ALICE|alice>", "revoke <@U0BOB> all --dry-run \"reason here\"",
		"revoke <@U0BOB> okta:1 kratos:2 why", "offboard bob@example.com “quoted”", "status abcdef-123",
		"list <mailto:a@b.co|a@b.co>", "revoke <@U0A|<!channel>> all", "'", "\"", "--dry-run",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cmd, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrUsage) {
				t.Fatalf("Parse(%q) returned a non-usage error %v", s, err)
			}
			if !utf8.ValidString(err.Error()) || len(err.Error()) > 400 {
				t.Fatalf("Parse(%q) error not short valid text: %q", s, err)
			}
			return
		}
		if _, ok := usage[cmd.Verb]; !ok {
			t.Fatalf("Parse(%q) gave unknown verb %q", s, cmd.Verb)
		}
		for _, u := range cmd.Users {
			if (u.ID == "") == (u.Email == "") {
				t.Fatalf("Parse(%q) gave a user with neither or both of id and email: %+v", s, u)
			}
			if strings.ContainsAny(u.ID+u.Email, "<>|& ") {
				t.Fatalf("Parse(%q) let markup into a user: %+v", s, u)
			}
		}
		if utf8.RuneCountInString(cmd.Reason) > maxReasonLen {
			t.Fatalf("reason too long")
		}
	})
}
