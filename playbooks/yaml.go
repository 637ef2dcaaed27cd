package playbooks

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// The playbooks file (WARDEN_PLAYBOOKS):
//
//	playbooks:
//	  - name: contractor-offboarding      # replaces the built-in of that name
//	    description: Manager approves, then everything is revoked.
//	    steps:
//	      - kind: approval
//	        approvers: [manager, group:S0SECURITY]
//	        quorum: 1
//	        escalate_after: 4h
//	        expire_after: 3d
//	      - kind: revoke_sessions
//	        scope: all
//	      - kind: revoke_tokens
//	      - kind: notify_user
//	        message: Your contract has ended; your access was removed.
//
// Decoding is strict: an unknown key, a key that does not apply to the step's
// kind, a bad duration, an unknown kind, scope or approver form are errors,
// each reported with its line.

// maxFileSize bounds a playbooks file.
const maxFileSize = 1 << 20

// LoadFile reads the playbooks file at path and returns the built-in
// playbooks with the file's added or, by name, replacing them. Errors wrap
// ErrInvalidPlaybook and list every problem with its line.
func LoadFile(path string) (map[string]Playbook, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load playbooks: %w", err)
	}
	defer f.Close()
	file, err := Decode(f)
	if err != nil {
		return nil, fmt.Errorf("load playbooks %s: %w", path, err)
	}
	out := Builtins()
	maps.Copy(out, file)
	return out, nil
}

// Decode reads a playbooks file (one YAML document) and returns its
// playbooks by name. An empty document holds no playbooks. Errors wrap
// ErrInvalidPlaybook; each problem is one line of the message, "line N: …",
// in document order.
func Decode(r io.Reader) (map[string]Playbook, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read playbooks: %w", err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%w: file is larger than %d bytes", ErrInvalidPlaybook, maxFileSize)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return map[string]Playbook{}, nil
		}
		return nil, fmt.Errorf("%w: %s", ErrInvalidPlaybook, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		line := extra.Line
		if err != nil {
			return nil, fmt.Errorf("%w: %s", ErrInvalidPlaybook, strings.TrimPrefix(err.Error(), "yaml: "))
		}
		return nil, fmt.Errorf("%w: line %d: only one YAML document is allowed", ErrInvalidPlaybook, line)
	}
	d := &decoder{}
	out := d.file(&doc)
	if len(d.errs) > 0 {
		slices.SortStableFunc(d.errs, func(a, b lineError) int { return a.line - b.line })
		msgs := make([]string, len(d.errs))
		for i, e := range d.errs {
			msgs[i] = fmt.Sprintf("line %d: %s", e.line, e.msg)
		}
		return nil, fmt.Errorf("%w: %s", ErrInvalidPlaybook, strings.Join(msgs, "\n"))
	}
	return out, nil
}

type lineError struct {
	line int
	msg  string
}

// decoder walks the YAML node tree, collecting every error with its line.
type decoder struct {
	errs []lineError
}

func (d *decoder) errorf(n *yaml.Node, format string, args ...any) {
	d.errs = append(d.errs, lineError{line: n.Line, msg: fmt.Sprintf(format, args...)})
}

// resolve follows an alias.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "empty"
		}
		return "a scalar"
	}
	return "unexpected YAML"
}

// pairs returns the key/value pairs of mapping n, reporting keys not in
// allowed (with want, the sorted allowed list, in the message) and
// duplicates. what names the mapping in messages.
func (d *decoder) pairs(n *yaml.Node, what string, allowed []string) [][2]*yaml.Node {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s must be a mapping, got %s", what, kindName(n))
		return nil
	}
	seen := map[string]int{}
	var out [][2]*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, "%s has a key that is not a string", what)
			continue
		}
		if !contains(allowed, k.Value) {
			d.errorf(k, "unknown key %q in %s (want %s)", k.Value, what, strings.Join(allowed, ", "))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.errorf(k, "key %q appears twice in %s (first at line %d)", k.Value, what, first)
			continue
		}
		seen[k.Value] = k.Line
		out = append(out, [2]*yaml.Node{k, v})
	}
	return out
}

func (d *decoder) str(n *yaml.Node, key string) string {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.errorf(n, "%s must be a string, got %s", key, kindName(n))
		return ""
	}
	return n.Value
}

func (d *decoder) strs(n *yaml.Node, key string) ([]string, []*yaml.Node) {
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "%s must be a list, got %s", key, kindName(n))
		return nil, nil
	}
	var out []string
	var nodes []*yaml.Node
	for _, e := range n.Content {
		e = resolve(e)
		out = append(out, d.str(e, key))
		nodes = append(nodes, e)
	}
	return out, nodes
}

func (d *decoder) int(n *yaml.Node, key string) int {
	v, err := strconv.Atoi(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		d.errorf(n, "%s must be a whole number, got %q", key, n.Value)
		return 0
	}
	return v
}

func (d *decoder) dur(n *yaml.Node, key string) Duration {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, "%s must be a duration like 30m, 4h or 3d, got %s", key, kindName(n))
		return 0
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		d.errorf(n, "%s: %v", key, err)
		return 0
	}
	return v
}

func (d *decoder) file(doc *yaml.Node) map[string]Playbook {
	out := map[string]Playbook{}
	if len(doc.Content) == 0 {
		return out
	}
	root := resolve(doc.Content[0])
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return out
	}
	firstLine := map[string]int{}
	for _, kv := range d.pairs(root, "the playbooks file", []string{"playbooks"}) {
		list := kv[1]
		if list.Kind != yaml.SequenceNode {
			d.errorf(list, "playbooks must be a list, got %s", kindName(list))
			continue
		}
		for _, pn := range list.Content {
			pn = resolve(pn)
			p, nameNode, ok := d.playbook(pn)
			if p.Name != "" {
				if first, dup := firstLine[p.Name]; dup {
					d.errorf(nameNode, "playbook %q is defined twice (first at line %d)", p.Name, first)
					continue
				}
				firstLine[p.Name] = nameNode.Line
			}
			if ok {
				out[p.Name] = p
			}
		}
	}
	return out
}

func (d *decoder) playbook(n *yaml.Node) (Playbook, *yaml.Node, bool) {
	var p Playbook
	nameNode := n
	before := len(d.errs)
	var stepsNode *yaml.Node
	for _, kv := range d.pairs(n, "a playbook", []string{"description", "name", "steps"}) {
		k, v := kv[0], kv[1]
		switch k.Value {
		case "name":
			nameNode = v
			p.Name = d.str(v, "name")
			if v.Kind == yaml.ScalarNode && v.Tag != "!!null" && !nameRE.MatchString(p.Name) {
				d.errorf(v, "playbook name %q: want lowercase letters, digits, - and _", p.Name)
			}
		case "description":
			p.Description = d.str(v, "description")
		case "steps":
			stepsNode = v
		}
	}
	if n.Kind != yaml.MappingNode {
		return p, nameNode, false
	}
	if p.Name == "" && nameNode == n {
		d.errorf(n, "playbook has no name")
	}
	switch {
	case stepsNode == nil:
		d.errorf(n, "playbook %q has no steps", p.Name)
	case stepsNode.Kind != yaml.SequenceNode:
		d.errorf(stepsNode, "steps must be a list, got %s", kindName(stepsNode))
	case len(stepsNode.Content) == 0:
		d.errorf(stepsNode, "playbook %q has no steps", p.Name)
	default:
		for _, sn := range stepsNode.Content {
			p.Steps = append(p.Steps, d.step(resolve(sn)))
		}
	}
	return p, nameNode, len(d.errs) == before
}

var stepKeys = []string{"approvers", "channel", "escalate_after", "expire_after", "kind", "message",
	"name", "quorum", "scope", "timeout", "wait"}

func (d *decoder) step(n *yaml.Node) StepSpec {
	var s StepSpec
	lines := map[string]*yaml.Node{}
	var approverNodes []*yaml.Node
	quorumSet := false
	bad := map[string]bool{}
	for _, kv := range d.pairs(n, "a step", stepKeys) {
		k, v := kv[0], kv[1]
		lines[k.Value] = v
		before := len(d.errs)
		switch k.Value {
		case "kind":
			s.Kind = d.str(v, "kind")
		case "name":
			s.Name = d.str(v, "name")
		case "approvers":
			s.Approvers, approverNodes = d.strs(v, "approvers")
		case "quorum":
			s.Quorum, quorumSet = d.int(v, "quorum"), true
		case "escalate_after":
			s.EscalateAfter = d.dur(v, "escalate_after")
		case "expire_after":
			s.ExpireAfter = d.dur(v, "expire_after")
		case "timeout":
			s.Timeout = d.dur(v, "timeout")
		case "wait":
			s.Wait = d.dur(v, "wait")
		case "scope":
			s.Scope = d.str(v, "scope")
		case "message":
			s.Message = d.str(v, "message")
		case "channel":
			s.Channel = d.str(v, "channel")
		}
		bad[k.Value] = len(d.errs) > before
	}
	if n.Kind != yaml.MappingNode {
		return s
	}
	if _, ok := lines["kind"]; !ok {
		d.errorf(n, "step has no kind (want one of %s)", strings.Join(kinds, ", "))
		return s
	}
	if s.Kind == "" {
		return s // already reported
	}
	for _, fe := range s.check(quorumSet) {
		if bad[fe.field] {
			continue // the value itself was already reported
		}
		at := n
		if v, ok := lines[fe.field]; ok {
			at = v
		}
		if fe.index >= 0 && fe.index < len(approverNodes) {
			at = approverNodes[fe.index]
		}
		d.errorf(at, "%s", fe.msg)
	}
	return s
}
