package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/sethvargo/go-envconfig"
	"github.com/warden-sec/warden/playbooks"
)

// playbooksCmd runs `warden playbooks validate FILE` and `warden playbooks
// list` (the built-ins plus WARDEN_PLAYBOOKS, as serve would load them).
func playbooksCmd(args []string, env envconfig.Lookuper, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, "usage: warden playbooks validate FILE | warden playbooks list\n")
		return exitUsage
	}
	switch args[0] {
	case "validate":
		if len(args) != 2 {
			fmt.Fprint(stderr, "usage: warden playbooks validate FILE\n")
			return exitUsage
		}
		books, err := playbooks.LoadFile(args[1])
		if err != nil {
			fmt.Fprintf(stderr, "warden: %s\n", err)
			return exitFailure
		}
		fmt.Fprintf(stdout, "%s: valid; %d playbooks with the built-ins\n", args[1], len(books))
		return exitOK
	case "list":
		if len(args) != 1 {
			fmt.Fprint(stderr, "usage: warden playbooks list\n")
			return exitUsage
		}
		books := playbooks.Builtins()
		if path, ok := env.Lookup("WARDEN_PLAYBOOKS"); ok && path != "" {
			var err error
			if books, err = playbooks.LoadFile(path); err != nil {
				fmt.Fprintf(stderr, "warden: WARDEN_PLAYBOOKS: %s\n", err)
				return exitFailure
			}
		}
		names := make([]string, 0, len(books))
		for n := range books {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			b := books[n]
			var steps []string
			for _, s := range b.Steps {
				steps = append(steps, s.Kind)
			}
			fmt.Fprintf(stdout, "%-24s %s\n%-24s steps: %s\n", n, b.Description, "", strings.Join(steps, " → "))
		}
		return exitOK
	default:
		fmt.Fprintf(stderr, "warden: unknown playbooks command %q (validate or list)\n", args[0])
		return exitUsage
	}
}
