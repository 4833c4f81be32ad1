// Command dlm_tool is godlm's operator CLI for the kernel DLM: it asks
// dlm_controld about lockspaces and cluster state and joins and leaves
// lockspaces. See package tools for the subcommands.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/godlm/godlm/tools"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := tools.App().Run(ctx, os.Args)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "dlm_tool: %v\n", err)
		os.Exit(tools.ExitCode(err))
	}
}
