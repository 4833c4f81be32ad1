package tools

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v3"
)

func leaveCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "leave",
		Usage:     "release a lockspace (forced, as the reference does)",
		ArgsUsage: "<name>",
		Action: func(ctx context.Context, cmd *cli.Command) error {
			name, err := lockspaceArg(cmd)
			if err != nil {
				return err
			}
			w := cmd.Root().Writer
			if err := writeString(w, fmt.Sprintf("Leaving lockspace \"%s\"\n", name)); err != nil {
				return err
			}
			if err := e.client.Leave(ctx, name, true); err != nil {
				return err
			}
			return writeString(w, "done\n")
		},
	}
}
