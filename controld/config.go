package controld

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/godlm/godlm/controld/fence"
)

// DefaultConfigPath is where dlm_controld reads its configuration.
const DefaultConfigPath = "/etc/dlm/dlm.conf"

// ErrConfig marks every configuration error.
var ErrConfig = errors.New("configuration error")

// optKind is the type of an option's value, as the reference parses it.
type optKind int

const (
	kindFlag optKind = iota // presence sets it; in dlm.conf "x=0|1"
	kindBool                // 0 or 1
	kindInt
	kindUint
	kindStr
)

// optDef describes one option of dlm.conf and the command line. The
// names, letters and defaults are the reference dlm_controld's, so
// existing dlm.conf files and unit files keep working; godlm adds the
// cluster identity (cluster_name, our_nodeid).
type optDef struct {
	name   string
	letter byte
	kind   optKind
	def    string
	help   string
}

var optDefs = []optDef{
	{"daemon_debug", 'D', kindFlag, "0", "debug logging to stderr (the daemon never forks)"},
	{"foreground", 0, kindFlag, "0", "accepted for compatibility; the daemon never forks"},
	{"log_debug", 'K', kindFlag, "0", "enable kernel DLM debug messages (configfs log_debug)"},
	{"protocol", 'r', kindStr, "detect", "DLM transport: tcp, sctp or detect (tcp)"},
	{"port", 'R', kindUint, "21064", "DLM kernel transport port (configfs tcp_port)"},
	{"mark", 0, kindUint, "0", "SO_MARK for DLM kernel sockets (configfs mark)"},
	{"debug_logfile", 'L', kindFlag, "0", "accepted for compatibility"},
	{"enable_plock", 'p', kindBool, "1", "cluster POSIX locks (not implemented yet)"},
	{"plock_debug", 'P', kindFlag, "0", "accepted for compatibility"},
	{"plock_rate_limit", 'l', kindInt, "0", "accepted for compatibility"},
	{"plock_ownership", 'o', kindBool, "0", "accepted for compatibility"},
	{"drop_resources_time", 't', kindInt, "10000", "accepted for compatibility"},
	{"drop_resources_count", 'c', kindInt, "10", "accepted for compatibility"},
	{"drop_resources_age", 'a', kindInt, "10000", "accepted for compatibility"},
	{"post_join_delay", 'j', kindInt, "30", "seconds after the cluster first becomes quorate before nodes that have not joined are fenced (startup fencing)"},
	{"enable_fencing", 'f', kindBool, "1", "fence a failed node before its locks are recovered; 0 recovers at once (unsafe with a shared disk)"},
	{"enable_concurrent_fencing", 0, kindBool, "0", "accepted for compatibility"},
	{"enable_startup_fencing", 's', kindBool, "1", "fence the configured nodes that have not joined post_join_delay after the cluster first becomes quorate"},
	{"repeat_failed_fencing", 0, kindBool, "1", "accepted for compatibility"},
	{"enable_quorum_fencing", 'q', kindBool, "1", "accepted for compatibility"},
	{"enable_quorum_lockspace", 0, kindBool, "1", "accepted for compatibility"},
	{"enable_helper", 0, kindBool, "1", "accepted for compatibility"},
	{"cluster_name", 0, kindStr, "", "cluster name, as in the filesystems' lock tables (godlm)"},
	{"our_nodeid", 0, kindInt, "0", "this node's id; 0: the node whose address is local (godlm)"},
	{"cluster_port", 0, kindUint, "21065", "TCP port the daemons talk on; not the kernel's port (godlm)"},
	{"cluster_key_file", 0, kindStr, "", "file with the shared cluster key, the same on every node; default /etc/dlm/cluster.key, made by dlm_tool keygen; required with more than one node (godlm)"},
	{"cluster_timeout", 0, kindInt, "1000", "milliseconds of silence before a node is declared failed (godlm)"},
	{"cluster_state_dir", 0, kindStr, "/var/lib/dlm_controld", "where the daemon keeps its cluster vote and log (godlm)"},
	{"join_timeout", 0, kindInt, "60", "seconds a lockspace join may wait for quorum and members (godlm)"},
	{"fence_agent_timeout", 0, kindInt, "60", "seconds a fence agent may run before its process group is killed and the attempt counts as failed (godlm)"},
}

func findOpt(name string) *optDef {
	for i := range optDefs {
		if optDefs[i].name == name {
			return &optDefs[i]
		}
	}
	return nil
}

func findLetter(l byte) *optDef {
	for i := range optDefs {
		if optDefs[i].letter == l {
			return &optDefs[i]
		}
	}
	return nil
}

// Node is one cluster node of the configuration ("node id=N addr=A").
type Node struct {
	ID    int
	Addrs []netip.Addr
	Mark  uint32
}

// LockspaceConf is per-lockspace configuration ("lockspace <ls> nodir=1"
// and "master <ls> node=<id> weight=<w>" lines).
type LockspaceConf struct {
	Nodir   bool
	Masters map[int]int // node id -> weight
}

// Config is the daemon's configuration: dlm.conf, overridden by the
// command line.
type Config struct {
	values map[string]string
	source map[string]string // "dlm.conf" or "cli"
	// Nodes lists the cluster nodes, by id.
	Nodes []Node
	// Lockspaces holds per-lockspace settings, by name.
	Lockspaces map[string]*LockspaceConf
	// Fencing is the fence configuration: the device, connect,
	// unfence, fence_all and unfence_all lines.
	Fencing *fence.Config
}

// NewConfig returns the defaults.
func NewConfig() *Config {
	c := &Config{values: map[string]string{}, source: map[string]string{}, Lockspaces: map[string]*LockspaceConf{},
		Fencing: &fence.Config{File: "dlm.conf"}}
	for _, d := range optDefs {
		c.values[d.name] = d.def
	}
	return c
}

// Str returns an option's value as text.
func (c *Config) Str(name string) string { return c.values[name] }

// Int returns an option's value as a number (0 for non-numbers, which
// parsing has ruled out for numeric options).
func (c *Config) Int(name string) int64 {
	v, _ := strconv.ParseInt(c.values[name], 0, 64)
	return v
}

// Bool returns a flag or boolean option.
func (c *Config) Bool(name string) bool { return c.Int(name) != 0 }

// Set sets an option, checking its name and value. source names where it
// came from ("dlm.conf", "cli").
func (c *Config) Set(name, value, source string) error {
	d := findOpt(name)
	if d == nil {
		return fmt.Errorf("unknown option %q", name)
	}
	switch d.kind {
	case kindFlag, kindBool:
		if value != "0" && value != "1" {
			return fmt.Errorf("option %s takes 0 or 1, not %q", name, value)
		}
	case kindInt:
		if _, err := strconv.ParseInt(value, 0, 64); err != nil {
			return fmt.Errorf("option %s takes a number, not %q", name, value)
		}
	case kindUint:
		if _, err := strconv.ParseUint(value, 0, 64); err != nil {
			return fmt.Errorf("option %s takes a non-negative number, not %q", name, value)
		}
	}
	if name == "protocol" {
		switch value {
		case "tcp", "0", "sctp", "1", "detect", "2":
		default:
			return fmt.Errorf("option protocol takes tcp, sctp or detect, not %q", value)
		}
	}
	if name == "port" && (c.parseUint(value) == 0 || c.parseUint(value) > 65535) {
		return fmt.Errorf("option port takes 1 to 65535, not %q", value)
	}
	if name == "cluster_state_dir" && strings.TrimSpace(value) == "" {
		// A node that forgets its vote and log can help elect a leader
		// that lacks committed entries; it must keep them on disk.
		return fmt.Errorf("option cluster_state_dir must name a directory: the cluster vote and log must survive a restart")
	}
	if _, ok := c.source[name]; ok && c.source[name] == "cli" && source != "cli" {
		return nil // the command line wins
	}
	c.values[name] = value
	c.source[name] = source
	return nil
}

func (c *Config) parseUint(v string) uint64 {
	n, _ := strconv.ParseUint(v, 0, 64)
	return n
}

// IsSet tells whether an option was given (in dlm.conf or on the
// command line) rather than defaulted.
func (c *Config) IsSet(name string) bool { _, ok := c.source[name]; return ok }

// Dump writes every option as name=value lines in table order, with
// where a non-default value came from, as `dlm_tool dump_config` shows.
func (c *Config) Dump(w io.Writer) {
	for _, d := range optDefs {
		fmt.Fprintf(w, "%s=%s", d.name, c.values[d.name])
		if s, ok := c.source[d.name]; ok {
			fmt.Fprintf(w, " (%s)", s)
		}
		fmt.Fprintln(w)
	}
}

// ReadFile parses a dlm.conf file into c. A missing file is not an error
// (everything has a default, and the command line may give the rest).
func (c *Config) ReadFile(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	defer f.Close()
	return c.Parse(f, path)
}

// Parse reads dlm.conf syntax: "key=value" option lines, "#" comments,
// and the node, lockspace, master and fencing lines. Every unknown or
// malformed line is reported with its file and line number; all of them
// are reported, not just the first.
func (c *Config) Parse(r io.Reader, name string) error {
	var errs []error
	// The fence lines are read as a whole afterwards: a device section
	// ends at a blank line or any other line.
	var lines []fence.Line
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 0, 4096), 1<<20)
	for ln := 1; s.Scan(); ln++ {
		line := strings.TrimSpace(s.Text())
		if strings.HasPrefix(line, "#") {
			continue
		}
		lines = append(lines, fence.Line{Num: ln, Text: line})
		if line == "" {
			continue
		}
		if err := c.parseLine(line); err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %w", name, ln, err))
		}
	}
	if err := s.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", name, err))
	}
	fc, err := fence.Parse(name, lines)
	if err != nil {
		errs = append(errs, err)
	} else {
		c.Fencing = fc
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
	}
	if err := c.checkNodes(); err != nil {
		return err
	}
	if len(c.Nodes) > 0 {
		if err := c.Fencing.Check(c.NodeIDs()); err != nil {
			return fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	return nil
}

// NodeIDs lists the configured nodes' ids, in file order.
func (c *Config) NodeIDs() []int {
	ids := make([]int, 0, len(c.Nodes))
	for _, n := range c.Nodes {
		ids = append(ids, n.ID)
	}
	return ids
}

func (c *Config) parseLine(line string) error {
	word := line
	if i := strings.IndexAny(line, " \t="); i >= 0 {
		word = line[:i]
	}
	switch word {
	case "node":
		return c.parseNode(strings.Fields(line)[1:])
	case "lockspace", "master":
		return c.parseLockspace(word, strings.Fields(line)[1:])
	case "device", "connect", "unfence", "fence_all", "unfence_all":
		return nil // read with the whole file by fence.Parse
	}
	key, value, ok := strings.Cut(line, "=")
	if !ok {
		if findOpt(word) != nil && findOpt(word).kind == kindFlag && word == line {
			return c.Set(word, "1", "dlm.conf")
		}
		return fmt.Errorf("%q: expected key=value", line)
	}
	key, value = strings.TrimSpace(key), strings.TrimSpace(value)
	if findOpt(key) == nil {
		return fmt.Errorf("unknown option %q", key)
	}
	return c.Set(key, value, "dlm.conf")
}

// keyvals parses "k=v" words.
func keyvals(words []string) ([][2]string, error) {
	var kv [][2]string
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q: expected key=value", w)
		}
		kv = append(kv, [2]string{k, v})
	}
	return kv, nil
}

func (c *Config) parseNode(words []string) error {
	kv, err := keyvals(words)
	if err != nil {
		return fmt.Errorf("node line: %w", err)
	}
	var n Node
	for _, p := range kv {
		switch p[0] {
		case "id":
			id, err := strconv.Atoi(p[1])
			if err != nil || id < 1 {
				return fmt.Errorf("node line: id must be a positive number, not %q", p[1])
			}
			n.ID = id
		case "addr":
			a, err := netip.ParseAddr(p[1])
			if err != nil {
				return fmt.Errorf("node line: bad address %q", p[1])
			}
			n.Addrs = append(n.Addrs, a.Unmap())
		case "mark":
			m, err := strconv.ParseUint(p[1], 0, 32)
			if err != nil {
				return fmt.Errorf("node line: bad mark %q", p[1])
			}
			n.Mark = uint32(m)
		default:
			return fmt.Errorf("node line: unknown key %q (expected id, addr, mark)", p[0])
		}
	}
	if n.ID == 0 {
		return errors.New("node line: no id")
	}
	if len(n.Addrs) > 3 {
		return fmt.Errorf("node line: %d addresses; the kernel takes at most 3", len(n.Addrs))
	}
	for _, o := range c.Nodes {
		if o.ID == n.ID {
			return fmt.Errorf("node %d defined twice", n.ID)
		}
	}
	c.Nodes = append(c.Nodes, n)
	sort.Slice(c.Nodes, func(i, j int) bool { return c.Nodes[i].ID < c.Nodes[j].ID })
	return nil
}

func (c *Config) parseLockspace(kind string, words []string) error {
	if len(words) < 1 {
		return fmt.Errorf("%s line: no lockspace name", kind)
	}
	name := words[0]
	kv, err := keyvals(words[1:])
	if err != nil {
		return fmt.Errorf("%s line: %w", kind, err)
	}
	lc := c.Lockspaces[name]
	if lc == nil {
		lc = &LockspaceConf{Masters: map[int]int{}}
		c.Lockspaces[name] = lc
	}
	if kind == "lockspace" {
		for _, p := range kv {
			if p[0] != "nodir" || (p[1] != "0" && p[1] != "1") {
				return fmt.Errorf("lockspace line: expected nodir=0|1, not %s=%s", p[0], p[1])
			}
			lc.Nodir = p[1] == "1"
		}
		return nil
	}
	id, weight := 0, 1
	for _, p := range kv {
		n, err := strconv.Atoi(p[1])
		if err != nil {
			return fmt.Errorf("master line: %s must be a number, not %q", p[0], p[1])
		}
		switch p[0] {
		case "node":
			id = n
		case "weight":
			weight = n
		default:
			return fmt.Errorf("master line: unknown key %q", p[0])
		}
	}
	if id < 1 {
		return errors.New("master line: no node=<id>")
	}
	lc.Masters[id] = weight
	return nil
}

func (c *Config) checkNodes() error {
	seen := map[netip.Addr]int{}
	for _, n := range c.Nodes {
		for _, a := range n.Addrs {
			if o, ok := seen[a]; ok {
				return fmt.Errorf("%w: address %s given to nodes %d and %d", ErrConfig, a, o, n.ID)
			}
			seen[a] = n.ID
		}
	}
	return nil
}

// Weight is the master weight of node id in lockspace ls: with master
// lines for ls, the listed nodes get their weight and the others 0; with
// none, every node weighs 1.
func (c *Config) Weight(ls string, id int) int {
	lc := c.Lockspaces[ls]
	if lc == nil || len(lc.Masters) == 0 {
		return 1
	}
	return lc.Masters[id]
}

// ParseArgs applies command-line options in the reference's syntax:
// --name value, --name=value, -x value, -x=value, and bare flags (-D,
// --foreground). It returns the arguments that are not options.
func (c *Config) ParseArgs(args []string) ([]string, error) {
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		var d *optDef
		var val string
		hasVal := false
		switch {
		case strings.HasPrefix(a, "--"):
			name := a[2:]
			if k, v, ok := strings.Cut(name, "="); ok {
				name, val, hasVal = k, v, true
			}
			if d = findOpt(name); d == nil {
				return nil, fmt.Errorf("%w: unknown option --%s", ErrConfig, name)
			}
		case strings.HasPrefix(a, "-") && len(a) >= 2:
			if d = findLetter(a[1]); d == nil {
				return nil, fmt.Errorf("%w: unknown option %s", ErrConfig, a)
			}
			if len(a) > 2 {
				val, hasVal = strings.TrimPrefix(a[2:], "="), true
			}
		default:
			rest = append(rest, a)
			continue
		}
		if !hasVal {
			if d.kind == kindFlag && (i+1 >= len(args) || (args[i+1] != "0" && args[i+1] != "1")) {
				val = "1"
			} else if i+1 < len(args) {
				i++
				val = args[i]
			} else {
				return nil, fmt.Errorf("%w: option %s needs a value", ErrConfig, a)
			}
		}
		if err := c.Set(d.name, val, "cli"); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrConfig, err)
		}
	}
	return rest, nil
}

// Help writes the options with their letters, defaults and meaning.
func (c *Config) Help(w io.Writer) {
	for _, d := range optDefs {
		l := "  "
		if d.letter != 0 {
			l = "-" + string(d.letter)
		}
		fmt.Fprintf(w, "  %s --%-26s default %-7s %s\n", l, d.name, d.def, d.help)
	}
}
