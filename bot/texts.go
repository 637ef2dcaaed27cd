package bot

// noticeKind names a situation in which the transport itself, not the
// Handler, answers a person. Every such text comes from this one table;
// details go to the log, never to Slack.
type noticeKind int

const (
	noticeBusy noticeKind = iota
	noticeShuttingDown
	noticeInternal
	noticeTooSlow
)

var noticeText = map[noticeKind]string{
	noticeBusy:         "Warden is busy, try again in a moment.",
	noticeShuttingDown: "Warden is shutting down, try again in a minute.",
	noticeInternal:     "Something went wrong inside Warden. It has been logged; try again, or ask the security team.",
	noticeTooSlow:      "Warden took too long to check this. Please submit again.",
}
