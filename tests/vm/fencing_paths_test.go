package vm

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/godlm/godlm/tests/lab"
)

// waitGuestStatus polls `dlm_tool status` inside n every 100 ms until
// its output matches the extended regular expression re (grep -E), for
// at most limit, and returns that output. Polling in the guest sees
// states that last a second or two, which a poll from the host, a
// command round trip each, can miss.
func waitGuestStatus(ctx context.Context, t *testing.T, n *lab.Node, limit time.Duration, what, re string) string {
	t.Helper()
	if strings.Contains(re, "'") {
		t.Fatalf("pattern %q: no single quotes", re)
	}
	cmd := fmt.Sprintf(`end=$(( $(cut -d. -f1 /proc/uptime) + %d )); s=
while [ $(cut -d. -f1 /proc/uptime) -lt $end ]; do
	s=$(dlm_tool status 2>&1)
	if echo "$s" | grep -qE '%s'; then echo "$s"; exit 0; fi
	sleep 0.1
done
echo "$s"; exit 1`, int(limit.Seconds())+1, re)
	r, err := n.Run(ctx, cmd)
	if err != nil {
		t.Fatal(err)
	}
	if r.ExitCode != 0 {
		log, _ := n.RunOK(ctx, "tail -40 "+daemonLog)
		t.Fatalf("node %d: no %s within %v (want /%s/); status:\n%s\nlogs:\n%s", n.ID, what, limit, re, r.Stdout, log)
	}
	return r.Stdout
}

// powerOffs returns the answered requests to power plug off among
// events, split by the switch's answer.
func powerOffs(events []lab.PowerEvent, plug string) (ok, failed []lab.PowerEvent) {
	for _, e := range events {
		if e.Request.Action != "off" || e.Request.Plug != plug {
			continue
		}
		if e.Reply.Status == "ok" {
			ok = append(ok, e)
		} else {
			failed = append(failed, e)
		}
	}
	return ok, failed
}

// TestFencingPaths drives the fencing paths other than the plain
// success on the real kernel, with lockspaces joined through dlm_tool
// and the lab's power switch scripted to fail, hang or answer slowly:
// an agent that fails then succeeds, an agent killed at its timeout,
// an operator's fence_ack while every attempt fails, and startup
// fencing of a node that never joined.
//
// An actor that dies mid-fence is not tested here: on three nodes, the
// victim and the dead actor leave one node, which has no quorum and can
// neither record the fence nor start a lockspace until another node
// returns; the simulator covers the hand-over to the next actor.
func TestFencingPaths(t *testing.T) {
	needVMs(t)
	c := lab.Start(t, lab.Config{Nodes: 3, LoadClusterModules: true})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	timeout := fmt.Sprintf("cluster_timeout=%d", clusterTimeout.Milliseconds())
	sw := c.Power()

	running := func(ls, ids string) *regexp.Regexp {
		return regexp.MustCompile(`(?m)^lockspace ` + ls + ` running change \d+ members ` + ids + `$`)
	}
	// start starts the daemons of ids with conf and waits until each
	// is in a quorate view of exactly ids.
	start := func(t *testing.T, conf string, ids ...int) {
		t.Helper()
		allOK(t, "start", c.Each(func(n *lab.Node) error { return n.StartDLMControld(ctx, conf) }, ids...))
		for _, id := range ids {
			waitStatus(ctx, t, c.Node(id), time.Minute, fmt.Sprintf("quorate view %v", ids), func(st string) bool {
				return quorate(st) && fmt.Sprint(members(st)) == fmt.Sprint(ids)
			})
		}
	}
	// join joins lockspace ls on the three nodes and waits until it
	// runs on all of them.
	join := func(t *testing.T, ls string) {
		t.Helper()
		allOK(t, "dlm_tool join", c.Each(func(n *lab.Node) error {
			_, err := n.RunOK(ctx, "dlm_tool join "+ls)
			return err
		}))
		for _, id := range []int{1, 2, 3} {
			waitStatus(ctx, t, c.Node(id), 30*time.Second, ls+" running on [1 2 3]", func(st string) bool {
				return running(ls, "1,2,3").MatchString(st)
			})
		}
	}
	// survivorsRun waits until ls runs on [1 2] on nodes 1 and 2, with
	// no fence pending, and checks that no process there is stuck.
	survivorsRun := func(t *testing.T, ls string) {
		t.Helper()
		for _, id := range []int{1, 2} {
			waitStatus(ctx, t, c.Node(id), time.Minute, ls+" running on [1 2]", func(st string) bool {
				return running(ls, "1,2").MatchString(st)
			})
			if st := status(ctx, t, c.Node(id)); strings.Contains(st, "fence 3 ") {
				t.Errorf("node %d: a fence of node 3 is still pending:\n%s", id, st)
			}
			noDState(ctx, t, c.Node(id))
		}
	}
	// restore takes the cluster back to three running nodes with no
	// daemon, no lockspace and no cluster state: the switch behaves,
	// the network is whole, ls is left where it runs, nodes that are
	// off (and those in reboot) are restarted.
	restore := func(t *testing.T, ls string, reboot ...int) {
		t.Helper()
		sw.FailNext(0)
		sw.Hang(false)
		sw.Delay(0)
		for _, n := range c.Nodes() {
			if !n.Running() && !slices.Contains(reboot, n.ID) {
				reboot = append(reboot, n.ID)
			}
		}
		// Rebooted before the network heals: a node that is still in
		// its old life would otherwise rejoin and be fenced meanwhile.
		for _, id := range reboot {
			if err := c.Restart(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		c.Heal()
		for _, n := range c.Nodes() {
			if slices.Contains(reboot, n.ID) {
				continue
			}
			if _, err := n.RunOK(ctx, "dlm_tool leave "+ls); err != nil {
				t.Fatalf("node %d: %v", n.ID, err)
			}
		}
		allOK(t, "stop", c.Each(func(n *lab.Node) error {
			_, err := n.RunOK(ctx, "killall dlm_controld 2>/dev/null; for i in $(seq 100); do pidof dlm_controld >/dev/null || break; sleep 0.1; done; "+
				"! pidof dlm_controld >/dev/null && rm -rf /var/lib/dlm_controld && : > "+daemonLog)
			return err
		}))
	}

	// An agent that fails twice: recovery waits while status shows the
	// attempts and the last error, then the third attempt powers node 3
	// off and the lockspace runs on [1 2].
	t.Run("AgentFailsThenSucceeds", func(t *testing.T) {
		const ls = "fpfail"
		start(t, c.DLMConf(timeout), 1, 2, 3)
		join(t, ls)
		from := len(sw.Events())
		sw.FailNext(2)
		c.Partition([]int{1, 2}, []int{3})
		st := waitGuestStatus(ctx, t, c.Node(1), time.Minute, "pending fence with a failed attempt",
			`fencing node 3 for .*: actor [12], [12] attempts, last error: .*injected failure`)
		if !regexp.MustCompile(`(?m)^lockspace ` + ls + ` \w+ change \d+ members 1,2,3 next 1,2 waiting \S+ fencing 3$`).MatchString(st) {
			t.Errorf("while node 3's fencing fails, %s does not wait for it:\n%s", ls, st)
		}
		if running(ls, "1,2").MatchString(st) {
			t.Errorf("%s runs without node 3 before it was fenced:\n%s", ls, st)
		}
		survivorsRun(t, ls)
		if c.Node(3).Running() {
			t.Error("node 3 still runs")
		}
		// Node 1's round fails, node 2 takes over and fails too, then
		// a new round starts from node 1, which succeeds.
		ok, failed := powerOffs(sw.Events()[from:], "node3")
		if len(failed) != 2 || len(ok) != 1 || failed[0].From != 1 || failed[1].From != 2 || ok[0].From != 1 || ok[0].At.Before(failed[1].At) {
			t.Errorf("want failed power-offs of node 3 from node 1 then node 2, then one from node 1 that succeeded: failed %+v, ok %+v", failed, ok)
		}
		log, _ := c.Node(2).RunOK(ctx, "grep -E 'fence attempt failed|node fenced' "+daemonLog)
		if strings.Count(log, "fence attempt failed") != 2 || strings.Count(log, `msg="node fenced" node=3 actor=1`) != 1 {
			t.Errorf("node 2's log of the attempts:\n%s", log)
		}
		restore(t, ls)
	})

	// An agent that hangs is killed at fence_agent_timeout, the attempt
	// counts as failed, and a retry succeeds once the switch answers.
	t.Run("AgentHangsTimesOut", func(t *testing.T) {
		const ls = "fphang"
		start(t, c.DLMConf(timeout, "fence_agent_timeout=5"), 1, 2, 3)
		join(t, ls)
		from := len(sw.Events())
		sw.Hang(true)
		c.Partition([]int{1, 2}, []int{3})
		t0 := time.Now()
		st := waitGuestStatus(ctx, t, c.Node(1), time.Minute, "pending fence with a timed-out attempt",
			`fencing node 3 for .*: actor [12], [0-9]+ attempts, last error: .*timed out after 5s`)
		if took := time.Since(t0); took < clusterTimeout+5*time.Second {
			t.Errorf("the attempt counted as timed out %v after the cut: before the failure timeout plus the agent's 5 s", took)
		}
		if running(ls, "1,2").MatchString(st) || !c.Node(3).Running() {
			t.Errorf("node 3 fenced or %s recovered while the switch hung (node 3 runs: %v):\n%s", ls, c.Node(3).Running(), st)
		}
		if ok, _ := powerOffs(sw.Events()[from:], "node3"); len(ok) != 0 {
			t.Errorf("the switch answered while it hung: %+v", ok)
		}
		sw.Hang(false)
		survivorsRun(t, ls)
		if c.Node(3).Running() {
			t.Error("node 3 still runs")
		}
		// Every node logs each ordered attempt, whoever made it.
		log, _ := c.Node(2).RunOK(ctx, "grep -E 'fence attempt|node fenced' "+daemonLog)
		if !regexp.MustCompile(`msg="fence attempt failed" node=3 .*timed out after 5s`).MatchString(log) || strings.Count(log, `msg="node fenced" node=3 `) != 1 {
			t.Errorf("node 2's log of the attempts:\n%s", log)
		}
		restore(t, ls)
	})

	// fence_ack while every attempt fails: recovery waits, the ack
	// releases it, and node 3, only acknowledged, is not powered off.
	t.Run("FenceAck", func(t *testing.T) {
		const ls = "fpack"
		start(t, c.DLMConf(timeout), 1, 2, 3)
		join(t, ls)
		from := len(sw.Events())
		sw.FailNext(1000)
		c.Partition([]int{1, 2}, []int{3})
		st := waitGuestStatus(ctx, t, c.Node(1), time.Minute, "pending fence with a failed attempt",
			`fencing node 3 for .*: actor [12], [0-9]+ attempts, last error: .*injected failure`)
		if running(ls, "1,2").MatchString(st) {
			t.Errorf("%s runs without node 3 before it was fenced or acknowledged:\n%s", ls, st)
		}
		// Still waiting a few seconds later: a failing agent never
		// counts as a fence.
		time.Sleep(3 * time.Second)
		if st := status(ctx, t, c.Node(2)); running(ls, "1,2").MatchString(st) || !strings.Contains(st, "fence 3 ") {
			t.Errorf("node 2 does not wait for node 3's fencing:\n%s", st)
		}
		out, err := c.Node(1).RunOK(ctx, "dlm_tool fence_ack 3")
		if err != nil || strings.TrimSpace(out) != "node 3 acknowledged as fenced" {
			t.Fatalf("dlm_tool fence_ack 3: %q %v", out, err)
		}
		survivorsRun(t, ls)
		if !c.Node(3).Running() {
			t.Error("node 3 was powered off: it was only acknowledged")
		}
		if ok, failed := powerOffs(sw.Events()[from:], "node3"); len(ok) != 0 || len(failed) == 0 {
			t.Errorf("want only failed power-offs of node 3: ok %+v, failed %d", ok, len(failed))
		}
		log, _ := c.Node(2).RunOK(ctx, "grep -c 'acknowledged' "+daemonLog)
		if strings.TrimSpace(log) == "0" {
			t.Error("node 2's log does not tell the acknowledgement")
		}
		restore(t, ls, 3)
	})

	// Startup fencing: a cluster that starts without node 3 fences it
	// post_join_delay after it first became quorate, and no lockspace
	// starts before.
	t.Run("StartupFencing", func(t *testing.T) {
		const ls = "fpstart"
		if !c.Node(3).Running() {
			t.Fatal("node 3 is not running")
		}
		from := len(sw.Events())
		t0 := time.Now()
		start(t, c.DLMConf(timeout, "post_join_delay=5"), 1, 2)
		// The join completes only once the lockspace starts: in the
		// background.
		allOK(t, "dlm_tool join", c.Each(func(n *lab.Node) error {
			_, err := n.RunOK(ctx, "(dlm_tool join "+ls+" >/tmp/join.out 2>&1; echo rc=$? >>/tmp/join.out) </dev/null >/dev/null 2>&1 &")
			return err
		}, 1, 2))
		// Poll until it runs; it may not run before node 3 is off.
		deadline := time.Now().Add(2 * time.Minute)
		seenWaiting := false
		for {
			st := status(ctx, t, c.Node(1))
			ok, _ := powerOffs(sw.Events()[from:], "node3")
			if running(ls, "1,2").MatchString(st) {
				if len(ok) == 0 {
					t.Fatalf("%s runs on [1 2] before node 3 was powered off:\n%s", ls, st)
				}
				break
			}
			if len(ok) == 0 && strings.Contains(st, "lockspace "+ls+" ") {
				seenWaiting = true
			}
			if time.Now().After(deadline) {
				log, _ := c.Node(1).RunOK(ctx, "tail -40 "+daemonLog)
				t.Fatalf("%s not running on [1 2] within 2m (node 3 powered off: %v):\n%s\nlogs:\n%s", ls, ok, st, log)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if !seenWaiting {
			t.Error("the lockspace was never seen waiting for node 3's startup fencing")
		}
		ok, _ := powerOffs(sw.Events()[from:], "node3")
		if ok[0].From != 1 {
			t.Errorf("node %d powered node 3 off; want node 1, the lowest member", ok[0].From)
		}
		if d := ok[0].At.Sub(t0); d < 5*time.Second {
			t.Errorf("node 3 powered off %v after the daemons started; post_join_delay is 5 s", d)
		}
		if c.Node(3).Running() {
			t.Error("node 3 still runs")
		}
		survivorsRun(t, ls)
		for _, id := range []int{1, 2} {
			out, err := c.Node(id).RunOK(ctx, "for i in $(seq 100); do grep -q rc= /tmp/join.out && break; sleep 0.1; done; cat /tmp/join.out")
			if err != nil || !strings.Contains(out, "rc=0") {
				t.Errorf("node %d: dlm_tool join: %q %v", id, out, err)
			}
		}
		log, _ := c.Node(1).RunOK(ctx, "grep -E 'startup check' "+daemonLog)
		if !strings.Contains(log, "startup check") {
			t.Errorf("node 1's log does not tell the startup check:\n%s", log)
		}
	})
}
