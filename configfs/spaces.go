package configfs

import (
	"errors"
	"fmt"
	"os"
	"slices"
)

// Member is one node of a lockspace as the kernel sees it in
// spaces/<lockspace>/nodes/<nodeid>.
type Member struct {
	// NodeID is the node's cluster id; it must be positive and have a
	// comm, or the kernel cannot tell a clean leave from a failure.
	NodeID int
	// Weight is the node's resource-mastering weight, written as given;
	// 1 is the usual value and 0 means the node never masters resources.
	Weight int
}

// spaceDir is a lockspace's configfs directory, relative to the root.
func spaceDir(ls string) string { return spacesDir + "/" + ls }

// nodesDir is a lockspace's member directory, relative to the root.
func nodesDir(ls string) string { return spaceDir(ls) + "/nodes" }

// SetMembers makes the configfs member list of lockspace ls match members.
//
// It creates spaces/<ls> (and its nodes directory, which the real kernel
// creates by itself) when absent, removes the node directories not in
// members, and creates the missing ones, writing nodeid then weight.
// Members listed in renew that already exist are removed and created again,
// which the kernel treats as the node having left and rejoined. Other
// existing members are left alone, whatever their weight.
func (k *Kernel) SetMembers(ls string, members []Member, renew []int) error {
	if err := ValidLockspaceName(ls); err != nil {
		return fmt.Errorf("configfs: set members: %w", err)
	}
	want := make(map[int]Member, len(members))
	for _, m := range members {
		if m.NodeID <= 0 {
			return fmt.Errorf("configfs: set members of %s: node id %d is not positive: %w", ls, m.NodeID, ErrInvalid)
		}
		if _, dup := want[m.NodeID]; dup {
			return fmt.Errorf("configfs: set members of %s: node %d is listed twice: %w", ls, m.NodeID, ErrInvalid)
		}
		want[m.NodeID] = m
	}
	if err := k.mkdirExist(spaceDir(ls)); err != nil {
		return fmt.Errorf("configfs: create lockspace %s: %w", ls, err)
	}
	if err := k.mkdirExist(nodesDir(ls)); err != nil {
		return fmt.Errorf("configfs: create lockspace %s: %w", ls, err)
	}
	have, err := k.nodeDirs(nodesDir(ls))
	if err != nil {
		return fmt.Errorf("configfs: set members of %s: %w", ls, err)
	}
	present := make(map[int]bool, len(have))
	for _, id := range have {
		_, keep := want[id]
		if keep && !slices.Contains(renew, id) {
			present[id] = true
			continue
		}
		if err := k.rmdir(nodesDir(ls) + "/" + nodeName(id)); err != nil {
			return fmt.Errorf("configfs: remove node %d from %s: %w", id, ls, err)
		}
	}
	ids := make([]int, 0, len(want))
	for id := range want {
		if !present[id] {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		if err := k.addMember(ls, want[id]); err != nil {
			return fmt.Errorf("configfs: add node %d to %s: %w", id, ls, err)
		}
	}
	return nil
}

// addMember creates one member directory; it is removed again if its
// attributes cannot be written.
func (k *Kernel) addMember(ls string, m Member) error {
	dir := nodesDir(ls) + "/" + nodeName(m.NodeID)
	if err := k.mkdir(dir); err != nil {
		return err
	}
	err := k.writeInt(dir+"/nodeid", int64(m.NodeID))
	if err == nil {
		err = k.writeInt(dir+"/weight", int64(m.Weight))
	}
	if err != nil {
		if rerr := k.rmdir(dir); rerr != nil {
			err = errors.Join(err, fmt.Errorf("undo: %w", rerr))
		}
	}
	return err
}

// Members returns the sorted node ids of lockspace ls's member
// directories. A missing lockspace directory gives an error wrapping
// fs.ErrNotExist.
func (k *Kernel) Members(ls string) ([]int, error) {
	if err := ValidLockspaceName(ls); err != nil {
		return nil, fmt.Errorf("configfs: list members: %w", err)
	}
	if err := isDir(k.path(spaceDir(ls))); err != nil {
		return nil, fmt.Errorf("configfs: list members of %s: %w", ls, err)
	}
	ids, err := k.nodeDirs(nodesDir(ls))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("configfs: list members of %s: %w", ls, err)
	}
	return ids, nil
}

// RemoveSpace removes every member directory of lockspace ls and then the
// lockspace directory. A missing lockspace is fine.
func (k *Kernel) RemoveSpace(ls string) error {
	if err := ValidLockspaceName(ls); err != nil {
		return fmt.Errorf("configfs: remove lockspace: %w", err)
	}
	if err := k.removeSpace(ls); err != nil {
		return fmt.Errorf("configfs: remove lockspace %s: %w", ls, err)
	}
	return nil
}

// removeSpace is RemoveSpace without the name check, for ClearCluster,
// which must also clean up names this package would not create.
func (k *Kernel) removeSpace(ls string) error {
	nodes, err := k.subdirs(nodesDir(ls))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, n := range nodes {
		if err := k.rmdir(nodesDir(ls) + "/" + n); err != nil {
			return err
		}
	}
	// The real nodes directory is a default group that goes away with its
	// parent and refuses rmdir; a plain one must be removed here.
	_ = k.rmdir(nodesDir(ls))
	return k.rmdir(spaceDir(ls))
}
