package tools

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/godlm/godlm/controld/dlmc"
)

func lsCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "ls",
		Usage:     "list lockspaces, or one lockspace",
		ArgsUsage: "[name]",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "nodes", Aliases: []string{"n"}, Usage: "also show every node of each lockspace"},
			jsonFlag,
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			args, err := argsBetween(cmd, 0, 1, "at most one lockspace name")
			if err != nil {
				return err
			}
			var lss []dlmc.Lockspace
			if len(args) == 1 {
				if err := dlmc.CheckName(args[0]); err != nil {
					return err
				}
				ls, err := e.client.LockspaceInfo(ctx, args[0])
				if err != nil {
					return err
				}
				lss = []dlmc.Lockspace{ls}
			} else if lss, err = e.client.Lockspaces(ctx); err != nil {
				return err
			}
			allNodes := cmd.Bool("nodes")
			if cmd.Bool("json") {
				return lsJSON(ctx, e.client, cmd, lss, allNodes)
			}
			return lsText(ctx, e.client, cmd, lss, allNodes)
		},
	}
}

// nodesSorted fetches nodes of a lockspace sorted by nodeid.
func nodesSorted(ctx context.Context, c *dlmc.Client, name string, which int) ([]dlmc.Node, error) {
	nodes, err := c.LockspaceNodes(ctx, name, which, 0)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(nodes, func(a, b dlmc.Node) int { return int(a.NodeID) - int(b.NodeID) })
	return nodes, nil
}

// lsText prints the reference's format. As the reference does, a
// lockspace whose nodes cannot be read shows "error" in their place and
// the listing goes on; the first such error is returned at the end.
func lsText(ctx context.Context, c *dlmc.Client, cmd *cli.Command, lss []dlmc.Lockspace, allNodes bool) error {
	var (
		b    strings.Builder
		errs []error
	)
	if len(lss) > 0 {
		b.WriteString("dlm lockspaces\n")
	}
	for _, ls := range lss {
		fmt.Fprintf(&b, "name          %s\n", ls.Name)
		fmt.Fprintf(&b, "id            0x%08x\n", ls.GlobalID)
		fmt.Fprintf(&b, "flags         0x%08x %s\n", ls.Flags, strings.Join(flagNames(ls.Flags), ","))
		fmt.Fprintf(&b, "change        %s\n", changeText(ls.Prev))
		if nodes, err := nodesSorted(ctx, c, ls.Name, dlmc.NodesMembers); err != nil {
			b.WriteString("members       error\n")
			errs = append(errs, err)
		} else {
			fmt.Fprintf(&b, "members       %s\n", idsText(nodes))
		}
		if ls.Next.Seq != 0 {
			fmt.Fprintf(&b, "new change    %s\n", changeText(ls.Next))
			if ls.Next.WaitMessages != 0 {
				fmt.Fprintf(&b, "new status    wait messages %d\n", ls.Next.WaitCondition)
			} else {
				fmt.Fprintf(&b, "new status    wait %s\n", waitName(ls.Next.WaitCondition))
			}
			if nodes, err := nodesSorted(ctx, c, ls.Name, dlmc.NodesNext); err != nil {
				b.WriteString("new members   error\n")
				errs = append(errs, err)
			} else {
				fmt.Fprintf(&b, "new members   %s\n", idsText(nodes))
			}
		}
		if allNodes {
			if nodes, err := nodesSorted(ctx, c, ls.Name, dlmc.NodesAll); err != nil {
				b.WriteString("all nodes error\n")
				errs = append(errs, err)
			} else {
				b.WriteString("all nodes\n")
				for _, n := range nodes {
					fmt.Fprintf(&b, "nodeid %d member %d failed %d start %d seq_add %d seq_rem %d check %s\n",
						n.NodeID, memberInt(n), n.FailReason, boolInt(n.Flags&dlmc.NFStart != 0),
						n.AddedSeq, n.RemovedSeq, checkText(n))
				}
			}
		}
		b.WriteString("\n")
	}
	if err := writeString(cmd.Root().Writer, b.String()); err != nil {
		return err
	}
	if len(errs) > 0 {
		return fmt.Errorf("reading nodes: %w", errors.Join(errs...))
	}
	return nil
}

// changeText is a change as the reference prints it: seq is shown as
// "combined_seq,seq", both as signed numbers.
func changeText(c dlmc.Change) string {
	return fmt.Sprintf("member %d joined %d remove %d failed %d seq %d,%d",
		c.MemberCount, c.JoinedCount, c.RemoveCount, c.FailedCount, int32(c.CombinedSeq), int32(c.Seq))
}

// idsText is "1 2 3 ": every id followed by a space.
func idsText(nodes []dlmc.Node) string {
	var b strings.Builder
	for _, n := range nodes {
		fmt.Fprintf(&b, "%d ", n.NodeID)
	}
	return b.String()
}

// flagNames names the LF* bits in the reference's order.
func flagNames(flags uint32) []string {
	names := []string{}
	for _, f := range []struct {
		bit  uint32
		name string
	}{
		{dlmc.LFSavePlocks, "save_plock"},
		{dlmc.LFNeedPlocks, "need_plock"},
		{dlmc.LFFSRegistered, "fs_reg"},
		{dlmc.LFKernelStopped, "kern_stop"},
		{dlmc.LFLeaving, "leave"},
		{dlmc.LFJoining, "join"},
	} {
		if flags&f.bit != 0 {
			names = append(names, f.name)
		}
	}
	return names
}

func waitName(cond int32) string {
	switch cond {
	case dlmc.WaitRingID:
		return "ringid"
	case dlmc.WaitQuorum:
		return "quorum"
	case dlmc.WaitFencing:
		return "fencing"
	case dlmc.WaitFSDone:
		return "fsdone"
	}
	return "unknown"
}

// memberInt is 1 for a member, -1 for a disallowed node, else 0.
func memberInt(n dlmc.Node) int {
	switch {
	case n.Flags&dlmc.NFDisallowed != 0:
		return -1
	case n.Flags&dlmc.NFMember != 0:
		return 1
	}
	return 0
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// checkKind is what the node awaits: "fence", "fs" or "none".
func checkKind(n dlmc.Node) string {
	switch {
	case n.Flags&dlmc.NFNeedFencing != 0:
		return "fence"
	case n.Flags&dlmc.NFCheckFS != 0:
		return "fs"
	}
	return "none"
}

// checkText is checkKind, with the failure time when fencing is needed.
func checkText(n dlmc.Node) string {
	if k := checkKind(n); k != "fence" {
		return k
	}
	return fmt.Sprintf("fence %d", n.FailMonotime)
}
