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
	kindNoSuchRun
	kindRunFinished
	kindAlreadyDecided
	kindSelfApproval
	kindNotApprover
	kindNotSubject
	kindNotRetryable
	kindBadRequest
)

var errorText = map[errorKind]string{
	kindInternal:       "Something went wrong inside Warden. It has been logged; try again, or ask the security team.",
	kindNotResponder:   "Only incident responders can do that. Your request was recorded.",
	kindUnknownAction:  "That button is not one Warden knows. Nothing was changed.",
	kindNoEmail:        "That person has no email on their Slack profile, so Warden cannot find their accounts.",
	kindNoSuchSession:  "That session is no longer there. Nothing was changed.",
	kindNotYours:       "You can only revoke your own sessions. Your request was recorded.",
	kindNoSuchRun:      "There is no run with that id that you can see.",
	kindRunFinished:    "That request is already finished or expired. Nothing was changed.",
	kindAlreadyDecided: "You already answered this request. Nothing was changed.",
	kindSelfApproval:   "You cannot approve a request you made or one about yourself. Your click was recorded.",
	kindNotApprover:    "You are not one of the approvers of this request. Your click was recorded.",
	kindNotSubject:     "Only the person this is about can answer it. Your click was recorded.",
	kindNotRetryable:   "That step has not failed, so there is nothing to retry.",
	kindBadRequest:     "Warden cannot act on that: the person has no email it can look up, or no session was named. Nothing was changed.",
}

func errorReply(k errorKind) Reply {
	return Reply{Text: errorText[k]}
}
