package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/sethvargo/go-envconfig"
	"github.com/warden-sec/warden/storage"
)

// auditCmd runs `warden audit verify|export`.
func auditCmd(ctx context.Context, args []string, env envconfig.Lookuper, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, "usage: warden audit verify|export [--data FILE] [--since T] [--subject S]\n")
		return exitUsage
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("audit "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "", "bbolt data file (default: $WARDEN_DATA, or warden.db)")
	since := fs.String("since", "", "export: records at or after this time (RFC 3339) or this long ago (e.g. 24h)")
	subject := fs.String("subject", "", "export: only records about this subject (Slack user id or email)")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return exitUsage
	}
	path := *data
	if path == "" {
		path = "warden.db"
		if v, ok := env.Lookup("WARDEN_DATA"); ok && v != "" {
			path = v
		}
	}
	db, err := storage.Open(path, storage.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		fmt.Fprintf(stderr, "warden: %s\n", err)
		return exitFailure
	}
	defer db.Close()

	switch sub {
	case "verify":
		n, err := db.Verify(ctx)
		if err != nil {
			var ce *storage.ChainError
			if errors.As(err, &ce) {
				fmt.Fprintf(stderr, "warden: audit chain broken at record %d: %s\n", ce.Seq, ce.Reason)
			} else {
				fmt.Fprintf(stderr, "warden: verify: %s\n", err)
			}
			return exitFailure
		}
		fmt.Fprintf(stdout, "audit chain intact: %d records\n", n)
		return exitOK
	case "export":
		var from time.Time
		if *since != "" {
			if from, err = parseSince(*since, time.Now()); err != nil {
				fmt.Fprintf(stderr, "warden: --since: %s\n", err)
				return exitUsage
			}
		}
		if _, err := db.Export(ctx, stdout, from, *subject); err != nil {
			fmt.Fprintf(stderr, "warden: export: %s\n", err)
			return exitFailure
		}
		return exitOK
	default:
		fmt.Fprintf(stderr, "warden: unknown audit command %q (verify or export)\n", sub)
		return exitUsage
	}
}

// parseSince reads an RFC 3339 time or a duration before now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, errors.New("use an RFC 3339 time (2026-12-01T00:00:00Z) or a duration (24h)")
}
