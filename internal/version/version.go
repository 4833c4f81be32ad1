// Package version holds the godlm release string, set at link time by
// the Makefile (-ldflags "-X github.com/godlm/godlm/internal/version.Version=...").
package version

// Version is the release of the godlm binaries; "dev" for untagged builds.
var Version = "dev"
