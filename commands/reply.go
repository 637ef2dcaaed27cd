package commands

// The neutral message model. commands and playbooks describe what to show;
// bot renders it to Block Kit, escapes every span, and enforces Slack's limits.
// Nothing here is Slack syntax: a Span's text is shown literally, whatever it
// contains, so text from users and providers can go in as it is.

// Reply is a message for one person (ephemeral, the default) or a channel.
type Reply struct {
	InChannel       bool   // visible to the channel, not only the caller
	ReplaceOriginal bool   // replace the message that carried the click
	Text            string // plain notification text; shown literally
	Blocks          []Block
	Modal           *Modal // open this modal (interactions that carry a trigger)
	Meta            *Meta  // identifies a posted message, so it can be found again after a crash
}

// Meta identifies a message Warden posted about a run. It travels with the
// message (as Slack message metadata), so a message posted just before a
// crash, whose ts was never saved, is found and edited instead of posted
// twice.
type Meta struct {
	RunID string
	Key   string
}

// BlockKind is the kind of a block.
type BlockKind int

const (
	Section BlockKind = iota // Text and/or up to 10 Fields
	Header                   // plain Text, one line
	Context                  // small grey Text
	Divider
	Actions // Buttons
)

// Block is one visual block of a message.
type Block struct {
	Kind      BlockKind
	Text      Text
	Fields    []Text
	Buttons   []Button
	Accessory *Button // Section only: one button beside the text
}

// Style of a Span.
type Style int

const (
	Plain Style = iota
	Bold
	Italic
	Code
	Mention // Text is a Slack user id; rendered as a mention
	Link    // Text is the label, URL the target
)

// Span is a run of text in one style.
type Span struct {
	Style Style
	Text  string
	URL   string
}

// Text is a sequence of spans.
type Text []Span

// T builds a Text from spans.
func T(spans ...Span) Text { return spans }

// P is a plain span.
func P(s string) Span { return Span{Style: Plain, Text: s} }

// B is a bold span.
func B(s string) Span { return Span{Style: Bold, Text: s} }

// I is an italic span.
func I(s string) Span { return Span{Style: Italic, Text: s} }

// C is a code span.
func C(s string) Span { return Span{Style: Code, Text: s} }

// U mentions a Slack user by id.
func U(userID string) Span { return Span{Style: Mention, Text: userID} }

// L is a link.
func L(label, url string) Span { return Span{Style: Link, Text: label, URL: url} }

// ButtonStyle colours a button.
type ButtonStyle int

const (
	DefaultButton ButtonStyle = iota
	Primary
	Danger
)

// Button is a clickable action. Value carries identifiers only; whoever
// handles the click re-reads state and re-checks authorization.
type Button struct {
	Label    string
	ActionID string
	Value    string
	Style    ButtonStyle
	Confirm  *Confirm
}

// Confirm is a "are you sure?" dialog shown before a button acts.
type Confirm struct {
	Title, Text, OK, Cancel string
}

// Modal is a form. PrivateMetadata carries identifiers only.
type Modal struct {
	CallbackID      string
	Title           string
	Submit          string
	PrivateMetadata string
	Blocks          []Block
	Inputs          []Input
}

// Input is a text field in a modal.
type Input struct {
	ID          string
	Label       string
	Placeholder string
	Multiline   bool
	Optional    bool
	MaxLength   int
}

// Request is a slash command as typed.
type Request struct {
	Actor   string // Slack user id of the caller
	Channel string
	Text    string // everything after "/sessions"
}

// Action is a button click.
type Action struct {
	Actor     string
	ActionID  string
	Value     string // untrusted: may be forged
	Channel   string
	MessageTS string
}

// Submission is a submitted modal.
type Submission struct {
	Actor           string
	CallbackID      string
	PrivateMetadata string // untrusted: may be forged
	Values          map[string]string
}

// SubmitResult answers a modal submission: field errors keep the modal open.
type SubmitResult struct {
	Errors map[string]string
	Reply  *Reply // posted to the submitter (ephemeral DM) when not nil
}
