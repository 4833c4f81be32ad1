// Command dlm_controld is godlm's cluster daemon for the kernel DLM.
//
// This release has only the command's shell: the kernel adapter, the
// lockspace engine and the cluster layer arrive in the next releases
// (see README.md, "Status").
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/godlm/godlm/internal/version"
)

func main() {
	showVersion := flag.Bool("V", false, "print the version and exit")
	flag.Parse()
	if *showVersion {
		fmt.Printf("dlm_controld %s (godlm)\n", version.Version)
		return
	}
	fmt.Fprintln(os.Stderr, "dlm_controld: the daemon is not implemented in this release")
	os.Exit(1)
}
