// Command fence_godlm is the fence agent of godlm's VM lab: it asks the
// test harness's power switch, over the virtio-serial port
// org.godlm.power, to power a lab VM off, on, or cycle it. It follows the
// fence-agents conventions, so dlm_controld runs it as it runs
// fence_ipmilan or fence_virsh:
//
//   - options come as key=value lines on stdin when it has no
//     arguments, or as -o/--action, -n/--plug (and --key=value) on the
//     command line; the last value of a key wins, unknown keys are
//     ignored with a warning on stderr;
//   - action is off, on, reboot (the default), status, list, monitor,
//     metadata or validate-all;
//   - plug (or port) names the VM, "node<N>"; without one, node=<N>
//     (which dlm_controld always sends) selects it;
//   - the exit status is 0 for success, 1 for failure; status exits 0
//     when the plug is on and 2 when it is off.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/godlm/godlm/tests/lab/internal/power"
	"github.com/godlm/godlm/tests/lab/internal/vport"
)

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

// options are the agent's inputs.
type options struct {
	action  string
	plug    string
	node    string
	timeout time.Duration
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	o, err := parse(args, stdin, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "Failed: %v\n", err)
		return 1
	}
	switch o.action {
	case "metadata":
		io.WriteString(stdout, metadata)
		return 0
	case "validate-all":
		if _, err := o.target(); err != nil {
			fmt.Fprintf(stderr, "Failed: %v\n", err)
			return 1
		}
		return 0
	}
	plug := ""
	switch o.action {
	case power.ActionList, power.ActionMonitor:
		plug = "all"
	default:
		if plug, err = o.target(); err != nil {
			fmt.Fprintf(stderr, "Failed: %v\n", err)
			return 1
		}
	}
	rep, err := ask(power.Request{ID: uint64(time.Now().UnixNano()), Action: o.action, Plug: plug}, o.timeout)
	if err != nil {
		fmt.Fprintf(stderr, "Failed: %v\n", err)
		return 1
	}
	switch {
	case o.action == power.ActionStatus && rep.Status == power.StatusOff:
		fmt.Fprintln(stdout, "Status: OFF")
		return 2
	case o.action == power.ActionStatus && rep.Status == power.StatusOK:
		fmt.Fprintln(stdout, "Status: ON")
		return 0
	case o.action == power.ActionList && rep.Status == power.StatusOK:
		for _, p := range strings.Fields(rep.Message) {
			fmt.Fprintf(stdout, "%s,%s\n", p, p)
		}
		return 0
	case rep.Status == power.StatusOK:
		if rep.Message != "" {
			fmt.Fprintf(stdout, "Success: %s\n", rep.Message)
		} else {
			fmt.Fprintln(stdout, "Success")
		}
		return 0
	}
	fmt.Fprintf(stderr, "Failed: %s %s: %s\n", o.action, plug, rep.Message)
	return 1
}

// parse reads the options from args, or from stdin when there are none.
func parse(args []string, stdin io.Reader, stderr io.Writer) (options, error) {
	o := options{action: power.ActionReboot, timeout: 60 * time.Second}
	set := func(k, v string) error {
		switch strings.ReplaceAll(k, "-", "_") {
		case "action", "option":
			o.action = v
		case "plug", "port":
			o.plug = v
		case "node", "nodename":
			o.node = v
		case "power_timeout":
			s, err := strconv.ParseFloat(v, 64)
			if err != nil || s <= 0 {
				return fmt.Errorf("power_timeout %q: want seconds", v)
			}
			o.timeout = time.Duration(s * float64(time.Second))
		default:
			fmt.Fprintf(stderr, "Parse error: Ignoring unknown option '%s=%s'\n", k, v)
		}
		return nil
	}
	if len(args) == 0 {
		s := bufio.NewScanner(io.LimitReader(stdin, 1<<20))
		for s.Scan() {
			line := strings.TrimSpace(s.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				fmt.Fprintf(stderr, "Parse error: Ignoring line without '=': %q\n", line)
				continue
			}
			if err := set(strings.TrimSpace(k), strings.TrimSpace(v)); err != nil {
				return o, err
			}
		}
		if err := s.Err(); err != nil {
			return o, fmt.Errorf("read options: %w", err)
		}
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		key, val, hasVal := "", "", false
		switch {
		case a == "-o" || a == "-n":
			if i+1 >= len(args) {
				return o, fmt.Errorf("%s needs a value", a)
			}
			key, val, hasVal = map[string]string{"-o": "action", "-n": "plug"}[a], args[i+1], true
			i++
		case strings.HasPrefix(a, "--"):
			key, val, hasVal = strings.Cut(a[2:], "=")
			if !hasVal && i+1 < len(args) {
				val, hasVal = args[i+1], true
				i++
			}
		}
		if key == "" || !hasVal {
			return o, fmt.Errorf("unknown argument %q", a)
		}
		if err := set(key, val); err != nil {
			return o, err
		}
	}
	switch o.action {
	case power.ActionOff, power.ActionOn, power.ActionReboot, power.ActionStatus, power.ActionList, power.ActionMonitor, "metadata", "validate-all":
	default:
		return o, fmt.Errorf("action %q is not supported", o.action)
	}
	return o, nil
}

// target is the plug to act on: plug or port, or else node.
func (o options) target() (string, error) {
	p := o.plug
	if p == "" {
		p = o.node
	}
	if p == "" {
		return "", errors.New("no plug given (plug=node<N>, or node=<N>)")
	}
	id, err := power.ParsePlug(p)
	if err != nil {
		return "", err
	}
	return power.Plug(id), nil
}

// ask sends req to the switch and waits for its reply, until timeout.
// While the host side is not connected, reads return nothing: the
// request is sent again every few seconds (the switch answers a repeated
// id from its memory, without acting twice).
func ask(req power.Request, timeout time.Duration) (power.Reply, error) {
	deadline := time.Now().Add(timeout)
	dev, err := vport.Find("/sys", power.PortName, deadline)
	if err != nil {
		return power.Reply{}, err
	}
	var f *os.File
	for {
		f, err = os.OpenFile(dev, os.O_RDWR, 0)
		if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // another agent holds the port
	}
	if err != nil {
		return power.Reply{}, fmt.Errorf("open the power switch port: %w", err)
	}
	defer f.Close()
	replies := make(chan power.Reply, 1)
	go func() {
		r := bufio.NewReaderSize(f, power.MaxLine*2)
		for {
			line, err := r.ReadString('\n')
			if err != nil { // the host is not connected: wait
				time.Sleep(100 * time.Millisecond)
				continue
			}
			rep, err := power.ParseReply(line)
			if err == nil && rep.ID == req.ID {
				replies <- rep
				return
			}
		}
	}()
	sent := make(chan error, 1)
	write := func() {
		go func() {
			_, err := io.WriteString(f, req.Line())
			sent <- err
		}()
	}
	write()
	writing := true
	resend := time.NewTicker(5 * time.Second)
	defer resend.Stop()
	timeoutC := time.After(time.Until(deadline))
	for {
		select {
		case rep := <-replies:
			return rep, nil
		case err := <-sent:
			writing = false
			if err != nil {
				return power.Reply{}, fmt.Errorf("write to the power switch: %w", err)
			}
		case <-resend.C:
			if !writing {
				write()
				writing = true
			}
		case <-timeoutC:
			return power.Reply{}, fmt.Errorf("no answer from the power switch in %v", timeout)
		}
	}
}

const metadata = `<?xml version="1.0" ?>
<resource-agent name="fence_godlm" shortdesc="Fence agent for godlm's VM lab power switch">
<longdesc>fence_godlm asks the godlm test harness, over the virtio-serial port org.godlm.power, to power a lab VM off, on or cycle it.</longdesc>
<vendor-url>https://github.com/godlm/godlm</vendor-url>
<parameters>
	<parameter name="action" unique="0" required="1">
		<getopt mixed="-o, --action=[action]" />
		<content type="string" default="reboot" />
		<shortdesc lang="en">Fencing action</shortdesc>
	</parameter>
	<parameter name="plug" unique="0" required="0" obsoletes="port">
		<getopt mixed="-n, --plug=[id]" />
		<content type="string" />
		<shortdesc lang="en">The VM to act on, node&lt;N&gt; (default: from node=)</shortdesc>
	</parameter>
	<parameter name="port" unique="0" required="0" deprecated="1">
		<getopt mixed="-n, --plug=[id]" />
		<content type="string" />
		<shortdesc lang="en">The VM to act on, node&lt;N&gt;</shortdesc>
	</parameter>
	<parameter name="power_timeout" unique="0" required="0">
		<getopt mixed="--power-timeout=[seconds]" />
		<content type="second" default="60" />
		<shortdesc lang="en">Seconds to wait for the power switch's answer</shortdesc>
	</parameter>
</parameters>
<actions>
	<action name="on" automatic="0"/>
	<action name="off" />
	<action name="reboot" />
	<action name="status" />
	<action name="list" />
	<action name="monitor" />
	<action name="metadata" />
	<action name="validate-all" />
</actions>
</resource-agent>
`
