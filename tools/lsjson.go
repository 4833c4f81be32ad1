package tools

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v3"

	"github.com/godlm/godlm/controld/dlmc"
)

// lsDoc is ls --json's document.
type lsDoc struct {
	Lockspaces []lsJSONLockspace `json:"lockspaces"`
}

type lsJSONLockspace struct {
	Name      string           `json:"name"`
	ID        uint32           `json:"id"`
	Flags     uint32           `json:"flags"`
	FlagNames []string         `json:"flag_names"`
	Change    lsJSONChange     `json:"change"`
	NewChange *lsJSONNewChange `json:"new_change,omitempty"`
	Members   []int32          `json:"members"`
	Nodes     *[]lsJSONNode    `json:"nodes,omitempty"` // with -n
}

type lsJSONChange struct {
	Member      int32  `json:"member"`
	Joined      int32  `json:"joined"`
	Remove      int32  `json:"remove"`
	Failed      int32  `json:"failed"`
	Seq         uint32 `json:"seq"`
	CombinedSeq uint32 `json:"combined_seq"`
}

// lsJSONNewChange is a pending change: what it waits for and its members.
type lsJSONNewChange struct {
	lsJSONChange
	Wait         string  `json:"wait"` // ringid, quorum, fencing, fsdone, messages, unknown
	WaitMessages int32   `json:"wait_messages,omitempty"`
	Members      []int32 `json:"members"`
}

type lsJSONNode struct {
	NodeID       int32  `json:"nodeid"`
	Member       bool   `json:"member"`
	Disallowed   bool   `json:"disallowed"`
	Start        bool   `json:"start"`
	FailReason   int32  `json:"fail_reason"`
	SeqAdd       uint32 `json:"seq_add"`
	SeqRem       uint32 `json:"seq_rem"`
	Check        string `json:"check"`
	FailWalltime uint64 `json:"fail_walltime"`
	FailMonotime uint64 `json:"fail_monotime"`
}

func jsonChange(c dlmc.Change) lsJSONChange {
	return lsJSONChange{
		Member: c.MemberCount, Joined: c.JoinedCount, Remove: c.RemoveCount, Failed: c.FailedCount,
		Seq: c.Seq, CombinedSeq: c.CombinedSeq,
	}
}

func ids(nodes []dlmc.Node) []int32 {
	out := make([]int32, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, n.NodeID)
	}
	return out
}

// lsJSON prints ls --json. Unlike the text form it fails as a whole if
// any part cannot be read.
func lsJSON(ctx context.Context, c *dlmc.Client, cmd *cli.Command, lss []dlmc.Lockspace, allNodes bool) error {
	doc := lsDoc{Lockspaces: []lsJSONLockspace{}}
	for _, ls := range lss {
		j := lsJSONLockspace{
			Name: ls.Name, ID: ls.GlobalID, Flags: ls.Flags, FlagNames: flagNames(ls.Flags),
			Change: jsonChange(ls.Prev),
		}
		members, err := nodesSorted(ctx, c, ls.Name, dlmc.NodesMembers)
		if err != nil {
			return fmt.Errorf("members of %q: %w", ls.Name, err)
		}
		j.Members = ids(members)
		if ls.Next.Seq != 0 {
			nc := lsJSONNewChange{lsJSONChange: jsonChange(ls.Next)}
			if ls.Next.WaitMessages != 0 {
				nc.Wait, nc.WaitMessages = "messages", ls.Next.WaitCondition
			} else {
				nc.Wait = waitName(ls.Next.WaitCondition)
			}
			next, err := nodesSorted(ctx, c, ls.Name, dlmc.NodesNext)
			if err != nil {
				return fmt.Errorf("new members of %q: %w", ls.Name, err)
			}
			nc.Members = ids(next)
			j.NewChange = &nc
		}
		if allNodes {
			all, err := nodesSorted(ctx, c, ls.Name, dlmc.NodesAll)
			if err != nil {
				return fmt.Errorf("nodes of %q: %w", ls.Name, err)
			}
			nodes := []lsJSONNode{}
			for _, n := range all {
				nodes = append(nodes, lsJSONNode{
					NodeID:       n.NodeID,
					Member:       n.Flags&dlmc.NFMember != 0,
					Disallowed:   n.Flags&dlmc.NFDisallowed != 0,
					Start:        n.Flags&dlmc.NFStart != 0,
					FailReason:   n.FailReason,
					SeqAdd:       n.AddedSeq,
					SeqRem:       n.RemovedSeq,
					Check:        checkKind(n),
					FailWalltime: n.FailWalltime,
					FailMonotime: n.FailMonotime,
				})
			}
			j.Nodes = &nodes
		}
		doc.Lockspaces = append(doc.Lockspaces, j)
	}
	return writeJSON(cmd.Root().Writer, doc)
}
