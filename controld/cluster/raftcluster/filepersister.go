package raftcluster

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// StateFileName is the name of the state file in a FilePersister's
// directory.
const StateFileName = "raft.state"

// FilePersister keeps the persisted state in one file, StateFileName in
// its directory, rewritten whole on every Save: write a temporary file,
// fsync it, rename it over the old one, fsync the directory. A crash
// leaves either the old state or the new one. Rewriting is cheap
// because the Core keeps the log short by compaction.
type FilePersister struct {
	dir string
}

// NewFilePersister returns a FilePersister for dir, creating dir (mode
// 0700) if needed.
func NewFilePersister(dir string) (*FilePersister, error) {
	if dir == "" {
		return nil, fmt.Errorf("state directory not set: %w", ErrConfig)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	return &FilePersister{dir: dir}, nil
}

// Path is the state file's path.
func (p *FilePersister) Path() string { return filepath.Join(p.dir, StateFileName) }

// Load implements Persister: nil and no error when there is no file.
func (p *FilePersister) Load() (*PersistentState, error) {
	f, err := os.Open(p.Path())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("loading state: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxStateSize+1))
	if err != nil {
		return nil, fmt.Errorf("loading state from %s: %w", p.Path(), err)
	}
	if len(b) > MaxStateSize {
		return nil, fmt.Errorf("loading state from %s: %w", p.Path(), ErrTooLarge)
	}
	st, err := decodeState(b)
	if err != nil {
		return nil, fmt.Errorf("loading state from %s: %w", p.Path(), err)
	}
	return st, nil
}

// Save implements Persister.
func (p *FilePersister) Save(st *PersistentState) error {
	b, err := encodeState(st)
	if err != nil {
		return fmt.Errorf("saving state: %w", err)
	}
	if err := p.write(b); err != nil {
		return fmt.Errorf("saving state to %s: %w", p.Path(), err)
	}
	return nil
}

func (p *FilePersister) write(b []byte) error {
	f, err := os.CreateTemp(p.dir, "."+StateFileName+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename: already gone
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, p.Path()); err != nil {
		return err
	}
	d, err := os.Open(p.dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
