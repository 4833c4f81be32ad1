package tools

import (
	"context"
	"strings"

	"github.com/urfave/cli/v3"
)

func dumpConfigCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "dump_config",
		Usage: "print the daemon's settings, name=value per line",
		Flags: []cli.Flag{jsonFlag},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if _, err := argsBetween(cmd, 0, 0, "no arguments"); err != nil {
				return err
			}
			text, err := e.client.DumpConfig(ctx)
			if err != nil {
				return err
			}
			w := cmd.Root().Writer
			if cmd.Bool("json") {
				return writeJSON(w, parseConfig(text))
			}
			return writeString(w, text+"\n")
		},
	}
}

// parseConfig reads "name=value" lines; a trailing " (source)" note, as
// in "enable_fencing=0 (dlm.conf)", is dropped. Other lines are skipped.
func parseConfig(text string) map[string]string {
	m := map[string]string{}
	for _, line := range lines(text) {
		name, value, ok := strings.Cut(line, "=")
		if !ok || name == "" {
			continue
		}
		if i := strings.Index(value, " ("); i >= 0 && strings.HasSuffix(value, ")") {
			value = value[:i]
		}
		m[name] = value
	}
	return m
}
