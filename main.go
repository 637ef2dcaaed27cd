// Command warden is an incident-response Slack bot for account sessions.
//
// main wires the parts together and does nothing else: configuration from
// the environment, storage, providers, the command service, the bot, and the
// HTTP endpoints; then it waits for a signal.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/sethvargo/go-envconfig"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], envconfig.OsLookuper(), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK       = 0
	exitFailure  = 1
	exitUsage    = 2
	exitConfig   = 3
	exitSlackOff = 4 // Slack refused the tokens or disabled Socket Mode
)

const cliUsage = `usage: warden [command]

commands:
  serve                      run the bot (default)
  audit verify [--data F]    check the audit chain; exit 1 naming the first bad record
  audit export [--data F] [--since T] [--subject S]
                             write audit records as JSON Lines
  playground [--addr A]      try Warden in a browser, with an in-process Slack
  playbooks validate FILE    check a playbooks YAML file (strict, errors with line numbers)
  playbooks list             the playbooks serve would load
  manifest                   print the Slack app manifest
  version                    print the version
`

// run is main without the process: testable, and every path returns a code.
func run(ctx context.Context, args []string, env envconfig.Lookuper, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		if len(args) > 0 {
			fmt.Fprint(stderr, cliUsage)
			return exitUsage
		}
		return serveCmd(ctx, env, stderr)
	case "audit":
		return auditCmd(ctx, args, env, stdout, stderr)
	case "playbooks":
		return playbooksCmd(args, env, stdout, stderr)
	case "playground":
		return playgroundCmd(ctx, args, env, stdout, stderr)
	case "manifest":
		return manifestCmd(stdout)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "warden", version)
		return exitOK
	case "help", "--help", "-h":
		fmt.Fprint(stdout, cliUsage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "warden: unknown command %q\n%s", cmd, cliUsage)
		return exitUsage
	}
}

// newLogger builds the process logger: JSON by default, text on request.
func newLogger(w io.Writer, format, level string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// configFail prints one line naming the variable and returns exitConfig.
func configFail(stderr io.Writer, err error) int {
	var ce *configError
	if errors.As(err, &ce) {
		fmt.Fprintf(stderr, "warden: configuration: %s\n", ce.Error())
	} else {
		fmt.Fprintf(stderr, "warden: configuration: %s\n", err)
	}
	return exitConfig
}
