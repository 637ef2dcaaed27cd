package commands

// errorKind names a failure a person can see. Every user-facing error text
// comes from this one table; details go to the log, never to Slack.
type errorKind int

const (
	kindInternal errorKind = iota
	kindNotResponder
	kindUnknownAction
	kindNoEmail
	kindNoSuchSession
	kindNotYours
)

var errorText = map[errorKind]string{
	kindInternal:      "Something went wrong inside Warden. It has been logged; try again, or ask the security team.",
	kindNotResponder:  "Only incident responders can do that. Your request was recorded.",
	kindUnknownAction: "That button is not one Warden knows. Nothing was changed.",
	kindNoEmail:       "That person has no email on their Slack profile, so Warden cannot find their accounts.",
	kindNoSuchSession: "That session is no longer there. Nothing was changed.",
	kindNotYours:      "You can only revoke your own sessions. Your request was recorded.",
}

func errorReply(k errorKind) Reply {
	return Reply{Text: errorText[k]}
}
