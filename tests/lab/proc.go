package lab

import (
	"os/exec"
	"runtime"
	"sort"
	"sync"
	"syscall"
)

// QEMU processes must end when the test process ends, however it ends
// (pass, fail, panic, go test's timeout). Each is started with
// PR_SET_PDEATHSIG=SIGKILL. That signal fires when the *thread* that
// forked the child exits, not the process, and Go may retire threads, so
// every start happens on one goroutine locked to its own OS thread that
// never returns: the signal then fires only when the process dies.
// Normal endings kill each QEMU by its own pid (Cluster.Close).

type startReq struct {
	cmd  *exec.Cmd
	done chan error
}

var (
	spawnOnce sync.Once
	spawnCh   chan startReq

	liveMu sync.Mutex
	live   = map[int]bool{} // pids of QEMU processes started and not yet reaped
)

func spawner() {
	runtime.LockOSThread()
	// Never unlocked: this thread lives as long as the process.
	for r := range spawnCh {
		r.done <- r.cmd.Start()
	}
}

// startTied starts cmd so that the kernel kills it when this process dies.
func startTied(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnCh = make(chan startReq)
		go spawner()
	})
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	// Its own process group: a terminal's ^C reaches the test, which then
	// kills the VMs in order, rather than all at once.
	cmd.SysProcAttr.Setpgid = true
	done := make(chan error, 1)
	spawnCh <- startReq{cmd: cmd, done: done}
	if err := <-done; err != nil {
		return err
	}
	liveMu.Lock()
	live[cmd.Process.Pid] = true
	liveMu.Unlock()
	return nil
}

// reaped records that a started process has been waited for.
func reaped(pid int) {
	liveMu.Lock()
	delete(live, pid)
	liveMu.Unlock()
}

// LivePIDs returns the pids of the QEMU processes this process started and
// that have not ended yet. Test mains check it is empty when they finish.
func LivePIDs() []int {
	liveMu.Lock()
	defer liveMu.Unlock()
	var pids []int
	for p := range live {
		pids = append(pids, p)
	}
	sort.Ints(pids)
	return pids
}
