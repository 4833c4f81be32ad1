package tools

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v3"

	"github.com/godlm/godlm/controld/cluster/raftcluster"
)

// keygenCommand writes a new cluster key. It needs no daemon.
func keygenCommand() *cli.Command {
	return &cli.Command{
		Name:      "keygen",
		Usage:     "write a new cluster key for dlm_controld",
		ArgsUsage: "[path]",
		Description: "keygen writes a new random cluster key to path (default " + raftcluster.DefaultKeyFile + ",\n" +
			"where dlm_controld looks when cluster_key_file is not set), with mode 0600.\n" +
			"Copy the same file to every node of the cluster: nodes prove to each other\n" +
			"that they hold it, and a daemon of a cluster of more than one node does not\n" +
			"start without it. keygen never replaces an existing key unless --force is\n" +
			"given: a new key must be installed on every node at once.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "replace an existing key file"},
		},
		Action: func(_ context.Context, cmd *cli.Command) error {
			args, err := argsBetween(cmd, 0, 1, "at most one path")
			if err != nil {
				return err
			}
			path := raftcluster.DefaultKeyFile
			if len(args) == 1 {
				if args[0] == "" {
					return usagef("keygen: empty path")
				}
				path = args[0]
			}
			if err := raftcluster.WriteNewKey(path, cmd.Bool("force")); err != nil {
				return fmt.Errorf("keygen: %w", err)
			}
			return writeString(cmd.Root().Writer, fmt.Sprintf("wrote a new cluster key to %s; copy it to every node (mode 0600)\n", path))
		},
	}
}
