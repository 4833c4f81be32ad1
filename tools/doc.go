// Package tools is dlm_tool, godlm's operator CLI: [App] builds the
// command tree (urfave/cli/v3), one file per subcommand.
//
// The text output of ls, status, dump, dump_config, join and leave
// matches the reference dlm_tool byte for byte, trailing spaces
// included, so scripts written for it keep working. Unlike the
// reference, every failure exits non-zero: see [ExitCode].
//
// keygen, which the reference does not have, writes a new cluster key
// for dlm_controld (default /etc/dlm/cluster.key, mode 0600) and never
// replaces one unless forced; it needs no daemon.
//
// # JSON output
//
// The query subcommands take --json and then print one JSON document
// with these field names, which are stable:
//
//	ls:          {"lockspaces": [{"name", "id", "flags", "flag_names": [...],
//	              "change": {"member", "joined", "remove", "failed", "seq", "combined_seq"},
//	              "new_change": {... as change, plus "wait": "ringid|quorum|fencing|fsdone|messages|unknown",
//	                             "wait_messages": n (with "messages"), "members": [nodeid...]}
//	                            (only while a change is pending),
//	              "members": [nodeid...],
//	              "nodes": [{"nodeid", "member", "disallowed", "start", "fail_reason",
//	                         "seq_add", "seq_rem", "check": "none|fs|fence",
//	                         "fail_walltime", "fail_monotime"}] (with -n)}]}
//	status:      {"daemon": {"nodeid", "state": {key: value}},
//	              "nodes": [{"nodeid", "state": {...}}], "startup_nodes": [...]}
//	             (state holds the daemon's key=value pairs; integers as numbers)
//	dump:        {"lines": ["...", ...]}
//	dump_config: {"<option>": "<value>", ...}
//	version:     {"name": "dlm_tool", "version": "...", "implementation": "godlm"}
package tools
