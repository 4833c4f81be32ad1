package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/godlm/godlm/controld/dlmc"
	"github.com/godlm/godlm/internal/version"
)

// Options configure [NewApp]; the zero value is what dlm_tool uses.
type Options struct {
	// Client reaches the daemon; nil means dlmc.DefaultClient.
	Client *dlmc.Client
	// Now is the clock of status's fence lines; nil means time.Now.
	Now func() time.Time
}

// env is what the subcommands share.
type env struct {
	client *dlmc.Client
	now    func() time.Time
}

// ErrUsage marks a command line dlm_tool cannot run: test with errors.Is.
var ErrUsage = errors.New("usage error")

// App returns the dlm_tool command, talking to the local daemon.
func App() *cli.Command { return NewApp(Options{}) }

// NewApp returns the dlm_tool command configured by o. It writes to the
// command's Writer and ErrWriter (stdout and stderr unless set), and it
// never exits the process: Run returns the error, and [ExitCode] maps it
// to an exit status.
func NewApp(o Options) *cli.Command {
	e := &env{client: o.Client, now: o.Now}
	if e.client == nil {
		e.client = dlmc.DefaultClient
	}
	if e.now == nil {
		e.now = time.Now
	}
	cmds := []*cli.Command{
		lsCommand(e),
		statusCommand(e),
		dumpCommand(e),
		dumpConfigCommand(e),
		joinCommand(e),
		leaveCommand(e),
		fenceAckCommand(e),
		keygenCommand(),
		versionCommand(),
	}
	for _, c := range cmds {
		c.OnUsageError = onUsageError
	}
	return &cli.Command{
		Name:      "dlm_tool",
		Usage:     "inspect and control the Linux DLM daemon (godlm)",
		UsageText: "dlm_tool <command> [options] [name]",
		Description: "dlm_tool asks dlm_controld about its lockspaces and cluster state, and\n" +
			"joins and leaves lockspaces. Query commands take --json. Exit status:\n" +
			"0 success, 1 failure, 2 bad command line.",
		Version:     version.Version,
		HideVersion: true,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "version", Aliases: []string{"V"}, Usage: "print the version and exit"},
		},
		Commands:       cmds,
		Action:         rootAction,
		OnUsageError:   onUsageError,
		ExitErrHandler: func(context.Context, *cli.Command, error) {},
	}
}

func rootAction(ctx context.Context, cmd *cli.Command) error {
	switch {
	case cmd.Bool("version"):
		_, err := fmt.Fprintln(cmd.Root().Writer, versionLine())
		return err
	case cmd.Args().Present():
		return usagef("unknown command %q (see dlm_tool --help)", cmd.Args().First())
	default:
		_ = cli.ShowRootCommandHelp(cmd)
		return usagef("no command given")
	}
}

// ExitCode is the exit status for an error from Run: 0 for nil, 2 for a
// bad command line (including a bad lockspace name), 1 otherwise.
func ExitCode(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrUsage), errors.Is(err, dlmc.ErrNameTooLong), errors.Is(err, dlmc.ErrBadName):
		return 2
	default:
		return 1
	}
}

// usageError is a command-line mistake; it wraps ErrUsage.
type usageError struct{ err error }

func (e *usageError) Error() string        { return e.err.Error() }
func (e *usageError) Unwrap() error        { return e.err }
func (e *usageError) Is(target error) bool { return target == ErrUsage }

func usagef(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
}

func onUsageError(_ context.Context, cmd *cli.Command, err error, _ bool) error {
	return &usageError{err: fmt.Errorf("%s: %w (see %s --help)", cmd.Name, err, cmd.FullName())}
}

// argsBetween returns the positional arguments, which must number from
// min to max.
func argsBetween(cmd *cli.Command, min, max int, what string) ([]string, error) {
	args := cmd.Args().Slice()
	switch {
	case len(args) < min:
		return nil, usagef("%s needs %s", cmd.Name, what)
	case len(args) > max:
		return nil, usagef("%s takes %s, got %d arguments", cmd.Name, what, len(args))
	}
	return args, nil
}

// lockspaceArg returns the one lockspace name a command takes, checked
// before any contact with the daemon.
func lockspaceArg(cmd *cli.Command) (string, error) {
	args, err := argsBetween(cmd, 1, 1, "one lockspace name")
	if err != nil {
		return "", err
	}
	if err := dlmc.CheckName(args[0]); err != nil {
		return "", err
	}
	return args[0], nil
}

var jsonFlag = &cli.BoolFlag{Name: "json", Usage: "print a JSON document"}

// writeJSON prints v, indented, and a newline.
func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	b = append(b, '\n')
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// writeString writes s to w, wrapping a failure.
func writeString(w io.Writer, s string) error {
	if _, err := io.WriteString(w, s); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}
