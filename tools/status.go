package tools

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/godlm/godlm/controld/dlmc"
)

func statusCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "print the daemon's cluster and fencing state",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "print every key=value the daemon reports"},
			jsonFlag,
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if _, err := argsBetween(cmd, 0, 0, "no arguments"); err != nil {
				return err
			}
			states, err := e.client.DumpStatus(ctx)
			if err != nil {
				return err
			}
			w := cmd.Root().Writer
			if cmd.Bool("json") {
				return writeJSON(w, statusJSON(states))
			}
			if cmd.Bool("verbose") {
				return writeString(w, statusVerbose(states))
			}
			return writeString(w, statusText(states, e.now()))
		},
	}
}

// statusText formats states as the reference's dlm_tool status: the
// daemon lines as they come, then startup nodes in the order received,
// then fence lines and node lines sorted by nodeid.
func statusText(states []dlmc.State, now time.Time) string {
	var (
		b       strings.Builder
		nodes   []dlmc.State
		startup []dlmc.State
		spaces  []dlmc.State
		godlm   string
	)
	for _, st := range states {
		switch st.Type {
		case dlmc.StateDaemon:
			f := st.Fields()
			fmt.Fprintf(&b, "cluster nodeid %d quorate %d ring seq %d %d\n",
				st.NodeID, cuint(f["quorate"]), cuint(f["cluster_ringid"]), cuint(f["daemon_ringid"]))
			fenceInit := ""
			if cuint(f["fence_in_progress_unknown"]) != 0 {
				fenceInit = "fence_init"
			}
			fmt.Fprintf(&b, "daemon now %d fence_pid %d %s\n", cuint(f["monotime"]), cuint(f["fence_pid"]), fenceInit)
			if p := f["cluster_protocol"]; p != "" {
				godlm = fmt.Sprintf("cluster %s leader %d term %d members %d of %d incarnation %s timeout %d ms\n",
					p, cuint(f["leader"]), cuint(f["term"]), cuint(f["member_count"]), cuint(f["expected_votes"]),
					f["incarnation"], cuint(f["timeout_ms"]))
			}
		case dlmc.StateDaemonNode:
			nodes = append(nodes, st)
		case dlmc.StateStartupNode:
			startup = append(startup, st)
		case dlmc.StateLockspace:
			spaces = append(spaces, st)
		}
	}
	b.WriteString(godlm)
	slices.SortStableFunc(nodes, func(a, b dlmc.State) int { return int(a.NodeID) - int(b.NodeID) })
	for _, su := range startup {
		i := slices.IndexFunc(nodes, func(n dlmc.State) bool { return n.NodeID == su.NodeID })
		if i < 0 {
			fmt.Fprintf(&b, "startup node %d\n", su.NodeID)
		} else {
			b.WriteString("startup " + nodeLine(nodes[i]))
		}
	}
	for _, n := range nodes {
		b.WriteString(fenceLine(n, now))
	}
	for _, n := range nodes {
		b.WriteString(nodeLine(n))
	}
	for _, l := range spaces {
		b.WriteString(lockspaceLine(l))
	}
	return b.String()
}

// lockspaceLine is godlm's "lockspace <name> <state> change <n> members
// <ids>", with the pending change's members and the nodes it waits for.
func lockspaceLine(st dlmc.State) string {
	f := st.Fields()
	s := fmt.Sprintf("lockspace %s %s change %s members %s", f["name"], f["state"], f["change"], f["members"])
	if n := f["next"]; n != "" && n != "-" {
		s += fmt.Sprintf(" next %s waiting %s", n, f["waiting"])
		if w := f["wait_fencing"]; w != "" && w != "-" {
			s += " fencing " + w
		}
	}
	return s + "\n"
}

// nodeLine is "node <id> M|X add .. rem .. fail .. fence .. at .. ..".
func nodeLine(st dlmc.State) string {
	f := st.Fields()
	letter := 'X'
	if cuint(f["member"]) != 0 {
		letter = 'M'
	}
	return fmt.Sprintf("node %d %c add %d rem %d fail %d fence %d at %d %d\n",
		st.NodeID, letter, cuint(f["add_time"]), cuint(f["rem_time"]), cuint(f["fail_monotime"]),
		cuint(f["fence_monotime"]), cuint(f["fence_actor_done"]), cuint(f["fence_walltime"]))
}

// fenceLine is the line of a node that needs fencing, else "".
func fenceLine(st dlmc.State, now time.Time) string {
	f := st.Fields()
	if cuint(f["need_fencing"]) == 0 {
		return ""
	}
	var tail string
	if cuint(f["fence_result_wait"]) != 0 {
		tail += " result_wait"
	}
	if cuint(f["killed"]) != 0 {
		tail += " killed"
	}
	what := fmt.Sprintf("pid %d", int32(cuint(f["fence_pid"])))
	if cuint(f["delay_fencing"]) != 0 {
		what = "delay"
	}
	line := fmt.Sprintf("fence %d %s %s actor %d fail %d fence %d now %d%s\n",
		st.NodeID, f["left_reason"], what, cuint(f["fence_actor_last"]), cuint(f["fail_walltime"]),
		cuint(f["fence_walltime"]), uint32(now.Unix()), tail)
	if a, ok := f["fence_attempts"]; ok { // godlm's detail
		line += fmt.Sprintf("fencing node %d for %s: actor %d, %s attempts", st.NodeID, since(f["fail_walltime"], now),
			cuint(f["fence_actor_last"]), a)
		if e := unquoteWord(f["fence_error"]); e != "" {
			line += ", last error: " + e
		}
		line += "\n"
	}
	return line
}

// since is how long ago the unix time t was, or "?" when unknown.
func since(t string, now time.Time) string {
	s, err := strconv.ParseInt(t, 10, 64)
	if err != nil || s <= 0 {
		return "?"
	}
	return now.Sub(time.Unix(s, 0)).Round(time.Second).String()
}

// unquoteWord reads a text the daemon quoted as one word (a Go string
// literal with escaped spaces); anything else is shown as it is.
func unquoteWord(s string) string {
	if u, err := strconv.Unquote(s); err == nil {
		return u
	}
	return s
}

// statusVerbose is status -v: each record's nodeid, then every word of
// its text on a line of its own, indented by four spaces, as the
// reference prints it (so a text ending in a space ends with an
// indented empty line). Startup nodes follow.
func statusVerbose(states []dlmc.State) string {
	var b strings.Builder
	var startup []int32
	for _, st := range states {
		switch st.Type {
		case dlmc.StateDaemon:
			fmt.Fprintf(&b, "our_nodeid %d\n", st.NodeID)
		case dlmc.StateDaemonNode:
			fmt.Fprintf(&b, "nodeid %d\n", st.NodeID)
		case dlmc.StateStartupNode:
			startup = append(startup, st.NodeID)
			continue
		default:
			continue
		}
		for _, word := range strings.Split(st.Str, " ") {
			b.WriteString("    " + word + "\n")
		}
	}
	for _, id := range startup {
		fmt.Fprintf(&b, "startup node %d\n", id)
	}
	return b.String()
}

// cuint reads a number as the reference client does, with C's
// strtoul(s, NULL, 0) (leading sign, 0x for hex, 0 for octal, stop at
// the first other character, 0 if none) cast to a 32-bit unsigned int.
func cuint(s string) uint32 {
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg, s = s[0] == '-', s[1:]
	}
	base := uint64(10)
	switch {
	case len(s) > 2 && (s[:2] == "0x" || s[:2] == "0X") && digit(s[2]) < 16:
		base, s = 16, s[2:]
	case len(s) > 1 && s[0] == '0':
		base = 8
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		d := digit(s[i])
		if d >= base {
			break
		}
		if v > (^uint64(0)-d)/base {
			v = ^uint64(0) // strtoul saturates
			break
		}
		v = v*base + d
	}
	if neg {
		v = -v
	}
	return uint32(v)
}

// digit is c's value as a digit of any base up to 36, or 99.
func digit(c byte) uint64 {
	switch {
	case '0' <= c && c <= '9':
		return uint64(c - '0')
	case 'a' <= c && c <= 'z':
		return uint64(c-'a') + 10
	case 'A' <= c && c <= 'Z':
		return uint64(c-'A') + 10
	}
	return 99
}
