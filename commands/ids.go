package commands

// Action and callback ids. They are constants in one file so the buttons that
// commands builds and the clicks it handles can never disagree. The bot only
// transports them.
const (
	ActRevokeSession = "ses.revoke"   // value: provider/sessionID (re-read on click)
	ActApprove       = "pb.approve"   // value: runID/step
	ActDeny          = "pb.deny"      // value: runID/step
	ActRetry         = "pb.retry"     // value: runID/step
	ActDeviceYes     = "dev.confirm"  // value: runID/step
	ActDeviceNo      = "dev.deny"     // value: runID/step
	CallbackDeny     = "pb.deny.form" // modal: reason for a denial
)
