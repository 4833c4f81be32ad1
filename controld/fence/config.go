// Package fence is fencing for dlm_controld: which fence devices power
// off or cut off a failed node, and how their agents are run.
//
// The configuration is the reference dlm_controld's, from dlm.conf:
//
//	device  <dev> <agent> [key=value ...]
//	connect <dev> node=<id> [key=value ...]   # one per node the device fences
//	unfence <dev>                             # optional: unfence this node at start
//
// or, for one agent that fences every node,
//
//	fence_all <agent> [key=value ...]
//	unfence_all                               # optional, on the next line
//
// A device section is its device line and the connect and unfence lines
// that follow it. A node's devices are those with a connect line for it,
// in file order; consecutive ones whose names share a base name before
// ":" (foo:1, foo:2) are parallel, and must all succeed; the next base
// name is the next method, tried when one of the previous fails.
package fence

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ErrConfig is matched by every configuration error.
var ErrConfig = errors.New("fence configuration")

// Limits, as the reference's.
const (
	MaxDevicesPerNode = 4
	MaxNameLen        = 255
	MaxArgsLen        = 4095
)

// Line is one line of the configuration file, with its number; only
// the fencing lines (device, connect, unfence, fence_all, unfence_all)
// and the lines that end a section (any other line, or a blank one)
// matter to Parse.
type Line struct {
	Num  int
	Text string
}

// Arg is one key=value argument passed to an agent.
type Arg struct{ Key, Value string }

func (a Arg) String() string { return a.Key + "=" + a.Value }

// Device is a fence device: an agent and its arguments.
type Device struct {
	Name  string
	Agent string
	Args  []Arg
	// Unfence: unfence the local node through this device at start.
	Unfence bool
	// Line is where the device was defined.
	Line int
}

// Base is the device name before ":": devices with the same base name
// are parallel.
func (d *Device) Base() string {
	b, _, _ := strings.Cut(d.Name, ":")
	return b
}

// Connect attaches a node to a device, with the arguments that select
// it there (a plug, a port).
type Connect struct {
	Device string
	Node   int
	Args   []Arg
	Line   int
}

// Config is the parsed fencing configuration.
type Config struct {
	File     string
	Devices  []*Device // in file order
	Connects []Connect // in file order
	// All is fence_all's agent (nil without one): it fences every node.
	All *Device
}

// Empty reports whether no fencing is configured at all.
func (c *Config) Empty() bool { return c.All == nil && len(c.Devices) == 0 }

func (c *Config) errorf(line int, format string, a ...any) error {
	return fmt.Errorf("%w: %s:%d: %s", ErrConfig, c.File, line, fmt.Sprintf(format, a...))
}

// Parse reads the fencing lines of file from lines.
func Parse(file string, lines []Line) (*Config, error) {
	c := &Config{File: file}
	var cur *Device // the open device section
	afterAll := false
	for _, l := range lines {
		words := strings.Fields(l.Text)
		kind := ""
		if len(words) > 0 {
			kind = words[0]
		}
		wasAfterAll := afterAll
		afterAll = false
		switch kind {
		case "device":
			if c.All != nil {
				return nil, c.errorf(l.Num, "device sections cannot be combined with fence_all")
			}
			if len(words) < 3 {
				return nil, c.errorf(l.Num, "device needs a name and an agent: device <name> <agent> [key=value ...]")
			}
			d := &Device{Name: words[1], Agent: words[2], Line: l.Num}
			if err := c.checkName(l.Num, "device", d.Name); err != nil {
				return nil, err
			}
			if err := c.checkAgent(l.Num, d.Agent); err != nil {
				return nil, err
			}
			if c.device(d.Name) != nil {
				return nil, c.errorf(l.Num, "device %q is defined twice (first at line %d)", d.Name, c.device(d.Name).Line)
			}
			args, err := c.args(l.Num, words[3:])
			if err != nil {
				return nil, err
			}
			d.Args = args
			c.Devices = append(c.Devices, d)
			cur = d
		case "connect":
			if cur == nil {
				return nil, c.errorf(l.Num, "connect outside a device section (it must follow its device line)")
			}
			if len(words) < 3 || words[1] != cur.Name {
				return nil, c.errorf(l.Num, "connect must name the device of its section, %q: connect %s node=<id> [key=value ...]", cur.Name, cur.Name)
			}
			args, err := c.args(l.Num, words[2:])
			if err != nil {
				return nil, err
			}
			cn := Connect{Device: cur.Name, Line: l.Num}
			for _, a := range args {
				if a.Key != "node" {
					continue
				}
				id, err := strconv.Atoi(a.Value)
				if err != nil || id < 1 {
					return nil, c.errorf(l.Num, "connect: node must be a positive node id, not %q", a.Value)
				}
				cn.Node = id
			}
			if cn.Node == 0 {
				return nil, c.errorf(l.Num, "connect needs node=<id>")
			}
			for _, o := range c.Connects {
				if o.Device == cn.Device && o.Node == cn.Node {
					return nil, c.errorf(l.Num, "node %d is connected to device %q twice (first at line %d)", cn.Node, cn.Device, o.Line)
				}
			}
			cn.Args = args
			c.Connects = append(c.Connects, cn)
		case "unfence":
			if cur == nil || len(words) != 2 || words[1] != cur.Name {
				return nil, c.errorf(l.Num, "unfence must follow the connect lines of its device: unfence <device>")
			}
			cur.Unfence = true
		case "fence_all":
			if len(c.Devices) > 0 {
				return nil, c.errorf(l.Num, "fence_all cannot be combined with device sections")
			}
			if c.All != nil {
				return nil, c.errorf(l.Num, "fence_all given twice (first at line %d)", c.All.Line)
			}
			if len(words) < 2 {
				return nil, c.errorf(l.Num, "fence_all needs an agent: fence_all <agent> [key=value ...]")
			}
			if err := c.checkAgent(l.Num, words[1]); err != nil {
				return nil, err
			}
			args, err := c.args(l.Num, words[2:])
			if err != nil {
				return nil, err
			}
			for _, a := range args {
				if a.Key == "node" {
					return nil, c.errorf(l.Num, "fence_all cannot name a node: it fences every node")
				}
			}
			c.All = &Device{Name: "fence_all", Agent: words[1], Args: args, Line: l.Num}
			cur, afterAll = nil, true
		case "unfence_all":
			if !wasAfterAll || len(words) != 1 {
				return nil, c.errorf(l.Num, "unfence_all must be alone on the line right after fence_all")
			}
			c.All.Unfence = true
		default:
			cur = nil // a blank or any other line ends a device section
		}
	}
	return c, nil
}

func (c *Config) device(name string) *Device {
	for _, d := range c.Devices {
		if d.Name == name {
			return d
		}
	}
	return nil
}

func (c *Config) checkName(line int, what, name string) error {
	if len(name) > MaxNameLen {
		return c.errorf(line, "%s name of %d bytes; at most %d", what, len(name), MaxNameLen)
	}
	if strings.Contains(name, "=") {
		return c.errorf(line, "%s name %q contains '='", what, name)
	}
	return nil
}

func (c *Config) checkAgent(line int, agent string) error {
	if strings.Contains(agent, "=") {
		return c.errorf(line, "agent %q looks like an argument; the agent's program comes first", agent)
	}
	return c.checkName(line, "agent", agent)
}

func (c *Config) args(line int, words []string) ([]Arg, error) {
	var out []Arg
	n := 0
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return nil, c.errorf(line, "%q: agent arguments are key=value (values cannot contain spaces)", w)
		}
		n += len(w) + 1
		out = append(out, Arg{k, v})
	}
	if n > MaxArgsLen {
		return nil, c.errorf(line, "arguments of %d bytes; at most %d", n, MaxArgsLen)
	}
	return out, nil
}

// Step is one agent run: a device, with the arguments that select the
// node on it.
type Step struct {
	Device  string
	Agent   string
	Args    []Arg // the device's, then the connect line's
	Unfence bool
}

// Method is a set of parallel steps: the node is fenced when all
// succeed.
type Method []Step

// Methods returns how node is fenced: its methods in priority order,
// each a set of parallel devices. None means the node has no fence
// method.
func (c *Config) Methods(node int) []Method {
	if c.All != nil {
		return []Method{{{Device: c.All.Name, Agent: c.All.Agent, Args: slices.Clone(c.All.Args), Unfence: c.All.Unfence}}}
	}
	var out []Method
	prev := ""
	count := 0
	for _, d := range c.Devices {
		cn, ok := c.connect(d.Name, node)
		if !ok {
			continue
		}
		count++
		if count > MaxDevicesPerNode {
			break
		}
		s := Step{Device: d.Name, Agent: d.Agent, Args: append(slices.Clone(d.Args), cn.Args...), Unfence: d.Unfence}
		if len(out) > 0 && d.Base() == prev {
			out[len(out)-1] = append(out[len(out)-1], s)
		} else {
			out = append(out, Method{s})
		}
		prev = d.Base()
	}
	return out
}

func (c *Config) connect(dev string, node int) (Connect, bool) {
	for _, cn := range c.Connects {
		if cn.Device == dev && cn.Node == node {
			return cn, true
		}
	}
	return Connect{}, false
}

// Check validates the configuration against the cluster's node ids:
// every connect line names a configured node, no node has more than
// MaxDevicesPerNode devices, and every device fences at least one node.
// It does not require a method for every node; Missing reports those.
func (c *Config) Check(nodes []int) error {
	for _, cn := range c.Connects {
		if !slices.Contains(nodes, cn.Node) {
			return c.errorf(cn.Line, "connect names node %d, which is not a cluster node (nodes: %v)", cn.Node, nodes)
		}
	}
	for _, n := range nodes {
		count := 0
		for _, cn := range c.Connects {
			if cn.Node == n {
				count++
			}
		}
		if count > MaxDevicesPerNode {
			return fmt.Errorf("%w: %s: node %d has %d fence devices; at most %d", ErrConfig, c.File, n, count, MaxDevicesPerNode)
		}
	}
	for _, d := range c.Devices {
		used := false
		for _, cn := range c.Connects {
			used = used || cn.Device == d.Name
		}
		if !used {
			return c.errorf(d.Line, "device %q has no connect line: it fences no node", d.Name)
		}
	}
	return nil
}

// Missing lists the nodes among nodes that no device can fence.
func (c *Config) Missing(nodes []int) []int {
	var out []int
	for _, n := range nodes {
		if len(c.Methods(n)) == 0 {
			out = append(out, n)
		}
	}
	return out
}

// Unfence lists the steps that unfence node at start: those of its
// devices with an unfence line (or fence_all with unfence_all).
func (c *Config) Unfence(node int) []Step {
	var out []Step
	for _, m := range c.Methods(node) {
		for _, s := range m {
			if s.Unfence {
				out = append(out, s)
			}
		}
	}
	return out
}
