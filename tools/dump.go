package tools

import (
	"context"
	"strings"

	"github.com/urfave/cli/v3"
)

func dumpCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "dump",
		Usage: "print the daemon's debug log buffer",
		Flags: []cli.Flag{jsonFlag},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if _, err := argsBetween(cmd, 0, 0, "no arguments"); err != nil {
				return err
			}
			text, err := e.client.DumpDebug(ctx)
			if err != nil {
				return err
			}
			w := cmd.Root().Writer
			if cmd.Bool("json") {
				return writeJSON(w, struct {
					Lines []string `json:"lines"`
				}{lines(text)})
			}
			// As the reference: the buffer, then a newline.
			return writeString(w, text+"\n")
		},
	}
}

// lines splits text into lines without their newlines; never nil.
func lines(text string) []string {
	text = strings.TrimSuffix(text, "\n")
	if text == "" {
		return []string{}
	}
	return strings.Split(text, "\n")
}
