package tools

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/urfave/cli/v3"
)

func fenceAckCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "fence_ack",
		Usage:     "record that a node was fenced by hand, so its locks are recovered",
		ArgsUsage: "<nodeid>",
		Description: "Use it only once the node is certainly powered off, or cut off from the\n" +
			"shared storage: its locks are then recovered without fencing it, and if it\n" +
			"still runs, its unsynced writes can overwrite the other nodes' data.\n" +
			"Needs root. godlm's daemon answers once the acknowledgement is recorded by\n" +
			"the cluster; the reference daemon does not answer, so after a few seconds\n" +
			"without an answer the request counts as sent.",
		Action: func(ctx context.Context, cmd *cli.Command) error {
			args, err := argsBetween(cmd, 1, 1, "one node id")
			if err != nil {
				return err
			}
			id, err := strconv.Atoi(args[0])
			if err != nil || id <= 0 {
				return usagef("fence_ack: %q is not a node id", args[0])
			}
			w := cmd.Root().Writer
			actx, cancel := context.WithTimeout(ctx, 35*time.Second)
			defer cancel()
			// The reference daemon never answers: its silence is a send.
			rctx, rcancel := context.WithTimeout(actx, 3*time.Second)
			defer rcancel()
			err = e.client.FenceAck(rctx, id)
			switch {
			case err == nil:
				return writeString(w, fmt.Sprintf("node %d acknowledged as fenced\n", id))
			case errors.Is(err, context.DeadlineExceeded) && actx.Err() == nil:
				return writeString(w, fmt.Sprintf("fence_ack for node %d sent (the daemon does not answer it)\n", id))
			case errors.Is(err, os.ErrPermission):
				return fmt.Errorf("fence_ack: %w (it needs root)", err)
			}
			return fmt.Errorf("fence_ack %d: %w", id, err)
		},
	}
}
