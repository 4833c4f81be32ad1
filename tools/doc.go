// Package tools holds dlm_tool's subcommands. It is not implemented yet.
package tools
