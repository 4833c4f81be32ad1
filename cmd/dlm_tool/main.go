// Command dlm_tool is godlm's operator CLI for the kernel DLM.
//
// This release has only the version subcommand; the others arrive with
// the daemon (see README.md, "Status").
package main

import (
	"fmt"
	"os"

	"github.com/godlm/godlm/internal/version"
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == "version" {
		fmt.Printf("dlm_tool %s (godlm)\n", version.Version)
		return
	}
	fmt.Fprintln(os.Stderr, "usage: dlm_tool version")
	os.Exit(2)
}
