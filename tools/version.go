package tools

import (
	"context"

	"github.com/urfave/cli/v3"

	"github.com/godlm/godlm/internal/version"
)

func versionLine() string { return "dlm_tool " + version.Version + " (godlm)" }

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print dlm_tool's version",
		Flags: []cli.Flag{jsonFlag},
		Action: func(_ context.Context, cmd *cli.Command) error {
			if _, err := argsBetween(cmd, 0, 0, "no arguments"); err != nil {
				return err
			}
			w := cmd.Root().Writer
			if cmd.Bool("json") {
				return writeJSON(w, struct {
					Name           string `json:"name"`
					Version        string `json:"version"`
					Implementation string `json:"implementation"`
				}{"dlm_tool", version.Version, "godlm"})
			}
			return writeString(w, versionLine()+"\n")
		},
	}
}
