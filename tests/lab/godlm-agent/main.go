// Command godlm-agent runs inside each lab guest. It serves the host's
// requests (run a command, write or read a file) over a virtio-serial port,
// independent of the cluster network. Busybox init respawns it if it dies.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/godlm/godlm/tests/lab/internal/vport"
	"github.com/godlm/godlm/tests/lab/internal/wire"
)

// maxOutput bounds what one command may return on stdout or stderr.
const maxOutput = 16 << 20

func main() {
	log.SetFlags(0)
	log.SetPrefix("godlm-agent: ")
	dev, err := vport.Find("/sys", wire.PortName, time.Now().Add(30*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		log.Fatal(err)
	}
	a := &agent{port: f}
	a.serve()
}

type agent struct {
	port *os.File
	wmu  sync.Mutex
}

// serve reads requests until the process ends. A read of zero bytes means
// the host side is not connected (virtio_console returns EOF then), so it
// waits and reads again; a half-read frame is dropped with the connection.
func (a *agent) serve() {
	for {
		r := bufio.NewReaderSize(a.port, 1<<16)
		for {
			var req wire.Request
			err := wire.ReadFrame(r, &req)
			if err != nil {
				if !errors.Is(err, io.EOF) {
					log.Printf("read: %v", err)
				}
				break
			}
			go a.handle(req)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (a *agent) reply(resp wire.Response) {
	a.wmu.Lock()
	defer a.wmu.Unlock()
	if err := wire.WriteFrame(a.port, resp); err != nil {
		log.Printf("reply %d: %v", resp.ID, err)
	}
}

func (a *agent) handle(req wire.Request) {
	resp := wire.Response{ID: req.ID}
	switch req.Op {
	case wire.OpPing:
	case wire.OpExec:
		run(req, &resp)
	case wire.OpWrite:
		if err := writeFile(req.Path, req.Data, os.FileMode(req.Mode)); err != nil {
			resp.Err = err.Error()
		}
	case wire.OpRead:
		b, err := os.ReadFile(req.Path)
		if err != nil {
			resp.Err = err.Error()
		}
		resp.Data = b
	default:
		resp.Err = fmt.Sprintf("unknown op %q", req.Op)
	}
	a.reply(resp)
}

func writeFile(path string, data []byte, mode os.FileMode) error {
	if mode == 0 {
		mode = 0o644
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		return err
	}
	return os.Chmod(path, mode)
}

// limitedBuffer keeps the first maxOutput bytes and drops the rest.
type limitedBuffer struct{ bytes.Buffer }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := maxOutput - b.Len(); room > 0 {
		if len(p) > room {
			b.Buffer.Write(p[:room])
		} else {
			b.Buffer.Write(p)
		}
	}
	return len(p), nil
}

func run(req wire.Request, resp *wire.Response) {
	argv := req.Argv
	if req.Shell != "" {
		argv = []string{"/bin/sh", "-c", req.Shell}
	}
	if len(argv) == 0 {
		resp.Err = "exec: empty command"
		return
	}
	ctx := context.Background()
	if req.TimeoutMS > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(req.TimeoutMS)*time.Millisecond)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "PATH=/sbin:/usr/sbin:/bin:/usr/bin")
	cmd.Stdin = bytes.NewReader(req.Stdin)
	var stdout, stderr limitedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// Its own process group, so a timeout kills what it started too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A command that leaves a daemon behind holding its stdout must still
	// return: stop waiting for the pipes shortly after the command exits.
	cmd.WaitDelay = 500 * time.Millisecond
	err := cmd.Run()
	resp.Stdout, resp.Stderr = stdout.Bytes(), stderr.Bytes()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case ctx.Err() != nil:
		resp.Err = fmt.Sprintf("timed out after %d ms", req.TimeoutMS)
		resp.ExitCode = -1
	case errors.As(err, &exitErr):
		resp.ExitCode = exitErr.ExitCode()
	case errors.Is(err, exec.ErrWaitDelay):
		// Exited; only its leftover children kept the pipes open.
		resp.ExitCode = cmd.ProcessState.ExitCode()
	default:
		resp.Err = err.Error()
		resp.ExitCode = -1
	}
}
