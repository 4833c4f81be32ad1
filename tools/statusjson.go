package tools

import (
	"slices"
	"strconv"
	"strings"

	"github.com/godlm/godlm/controld/dlmc"
)

// statusDoc is status --json's document.
type statusDoc struct {
	Daemon       *statusJSONState  `json:"daemon"`
	Nodes        []statusJSONState `json:"nodes"`
	StartupNodes []statusJSONState `json:"startup_nodes"`
	Lockspaces   []map[string]any  `json:"lockspaces"`
}

type statusJSONState struct {
	NodeID int32          `json:"nodeid"`
	State  map[string]any `json:"state"`
}

func statusJSON(states []dlmc.State) statusDoc {
	doc := statusDoc{Nodes: []statusJSONState{}, StartupNodes: []statusJSONState{}, Lockspaces: []map[string]any{}}
	for _, st := range states {
		j := statusJSONState{NodeID: st.NodeID, State: map[string]any{}}
		f := st.Fields()
		for k, v := range f {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				j.State[k] = n
			} else {
				j.State[k] = v
			}
		}
		switch st.Type {
		case dlmc.StateDaemon:
			if doc.Daemon == nil {
				doc.Daemon = &j
			}
		case dlmc.StateDaemonNode:
			if e, ok := f["fence_error"]; ok {
				j.State["fence_error"] = unquoteWord(e)
			}
			doc.Nodes = append(doc.Nodes, j)
		case dlmc.StateStartupNode:
			doc.StartupNodes = append(doc.StartupNodes, j)
		case dlmc.StateLockspace:
			for _, k := range []string{"members", "next", "waiting", "wait_fencing"} {
				if _, ok := f[k]; ok || k != "wait_fencing" {
					j.State[k] = idsJSON(f[k])
				}
			}
			doc.Lockspaces = append(doc.Lockspaces, j.State)
		}
	}
	slices.SortStableFunc(doc.Nodes, func(a, b statusJSONState) int { return int(a.NodeID) - int(b.NodeID) })
	return doc
}

// idsJSON turns godlm's "1,2,3" (or "-") into a list of node ids.
func idsJSON(s string) []int {
	ids := []int{}
	for _, f := range strings.Split(s, ",") {
		if n, err := strconv.Atoi(f); err == nil {
			ids = append(ids, n)
		}
	}
	return ids
}
