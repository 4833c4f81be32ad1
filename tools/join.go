package tools

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/urfave/cli/v3"
)

// Lockspace create flags (linux/dlm.h DLM_LSFL_*).
const (
	lsflFS      = 0x4
	lsflNewExcl = 0x8
)

func joinCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "join",
		Usage:     "create or join a lockspace",
		ArgsUsage: "<name>",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "excl", Aliases: []string{"e"}, Usage: "0|1: fail if the lockspace exists (NEWEXCL)"},
			&cli.IntFlag{Name: "fs", Aliases: []string{"f"}, Usage: "0|1: a filesystem lockspace (FS)"},
			&cli.StringFlag{Name: "mode", Aliases: []string{"m"}, Value: "0600", Usage: "octal permission of the lockspace device"},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			name, err := lockspaceArg(cmd)
			if err != nil {
				return err
			}
			var flags uint32
			for _, f := range []struct {
				name string
				bit  uint32
			}{{"excl", lsflNewExcl}, {"fs", lsflFS}} {
				switch cmd.Int(f.name) {
				case 0:
				case 1:
					flags |= f.bit
				default:
					return usagef("join: -%c takes 0 or 1, not %d", f.name[0], cmd.Int(f.name))
				}
			}
			mode, err := parseMode(cmd.String("mode"))
			if err != nil {
				return err
			}
			w := cmd.Root().Writer
			if err := writeString(w, fmt.Sprintf("Joining lockspace \"%s\" permission %o %s\n", name, mode, flagText(flags))); err != nil {
				return err
			}
			if err := e.client.Join(ctx, name, flags, mode); err != nil {
				return err
			}
			return writeString(w, "done\n")
		},
	}
}

// flagText is "flags NEWEXCL FS " as the reference prints it, "" for 0.
func flagText(flags uint32) string {
	if flags == 0 {
		return ""
	}
	s := "flags "
	if flags&lsflNewExcl != 0 {
		s += "NEWEXCL "
	}
	if flags&lsflFS != 0 {
		s += "FS "
	}
	return s
}

// parseMode reads an octal permission, with or without a leading 0 or 0o.
func parseMode(s string) (uint32, error) {
	digits := strings.TrimPrefix(strings.TrimPrefix(s, "0o"), "0O")
	if digits == "" && s != "" {
		digits = "0"
	}
	v, err := strconv.ParseUint(digits, 8, 32)
	if err != nil || v > 0o777 {
		return 0, usagef("join: mode %q is not an octal permission from 0 to 0777", s)
	}
	return uint32(v), nil
}
