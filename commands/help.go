package commands

var helpText = map[string]string{
	VerbMine:     "your own sessions, with Revoke buttons",
	VerbList:     "responders: a person's sessions across providers",
	VerbRevoke:   "responders: end sessions; `--dry-run` shows what would end",
	VerbOffboard: "contractor offboarding, after approval",
	VerbStatus:   "progress of a revocation or offboarding",
	VerbAudit:    "responders: the latest audit records about a person",
	VerbReport:   "session hygiene: stale sessions, unmanaged devices, open runs",
	VerbHelp:     "this message",
}

func helpReply() Reply {
	r := Reply{Text: "Warden: where is this person signed in, and how do we end it."}
	r.Blocks = append(r.Blocks, Block{Kind: Section, Text: T(B("Warden"), P(" — where is this person signed in, and how do we end it."))})
	var fields []Text
	for _, v := range verbs {
		fields = append(fields, T(C(usage[v]), P("\n"+helpText[v])))
	}
	for len(fields) > 0 {
		n := min(len(fields), 10)
		r.Blocks = append(r.Blocks, Block{Kind: Section, Fields: fields[:n]})
		fields = fields[n:]
	}
	r.Blocks = append(r.Blocks, Block{Kind: Context, Text: T(P("People are named with @mention or email. Every command is recorded in the audit trail."))})
	return r
}
