package playground

import (
	"regexp"
	"strings"

	"github.com/warden-sec/warden/sessions/demo"
)

// Person is someone the page lets you be: a Slack user whose email matches
// one of the demo provider's seeded people.
type Person struct {
	ID, Name, RealName, Email string
	// Role is shown next to the name.
	Role string
	// Responder puts the person in ResponderGroup.
	Responder bool
}

// Slack ids the playground uses. `warden playground` passes ResponderGroup
// as WARDEN_RESPONDERS and the security channel as WARDEN_SECURITY_CHANNEL.
const (
	ResponderGroup         = "S0RESPONDERS"
	DefaultChannel         = "C0INCIDENT"
	DefaultSecurityChannel = "C0SECURITY"
)

// DefaultPeople is the cast: alice the responder, bob an ordinary
// engineer, carol the manager (of bob and dave), dave the contractor and
// erin from sales.
func DefaultPeople() []Person {
	return []Person{
		{ID: "U0ALICE", Name: "alice", RealName: "Alice Rivera", Email: demo.AliceEmail, Role: "responder", Responder: true},
		{ID: "U0BOB", Name: "bob", RealName: "Bob Engel", Email: demo.BobEmail, Role: "engineer"},
		{ID: "U0CAROL", Name: "carol", RealName: "Carol Mendes", Email: demo.CarolEmail, Role: "manager"},
		{ID: "U0DAVE", Name: "dave", RealName: "Dave Kowalski", Email: demo.DaveEmail, Role: "contractor"},
		{ID: "U0ERIN", Name: "erin", RealName: "Erin Sato", Email: demo.ErinEmail, Role: "sales"},
	}
}

// slackEscape is what the Slack client does to a slash command's text
// before sending it: &, < and > become entities.
var slackEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

var (
	atNameRe = regexp.MustCompile(`(^|\s)@([A-Za-z0-9._-]+)`)
	emailRe  = regexp.MustCompile(`(^|\s)([A-Za-z0-9._%+'-]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)`)
)

// clientText turns what someone typed after /sessions into what Slack
// sends for a command with should_escape (Warden's manifest): markup
// characters escaped, @name of a workspace member as <@U…|name>, an email
// as <mailto:…|…>.
func clientText(typed string, people []Person) string {
	s := slackEscape.Replace(typed)
	s = emailRe.ReplaceAllString(s, "$1<mailto:$2|$2>")
	return atNameRe.ReplaceAllStringFunc(s, func(m string) string {
		sub := atNameRe.FindStringSubmatch(m)
		lead, name := sub[1], strings.TrimRight(sub[2], ".")
		rest := sub[2][len(name):]
		for _, p := range people {
			if strings.EqualFold(p.Name, name) {
				return lead + "<@" + p.ID + "|" + p.Name + ">" + rest
			}
		}
		return m
	})
}
