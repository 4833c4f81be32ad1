package raftcluster

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// The cluster key is a file holding a shared secret, the same on every
// node. Its contents, without trailing newlines, are the key: any bytes
// will do, but GenerateKey writes 32 random bytes as 64 hexadecimal
// digits and a newline, so the file can be inspected and copied as
// text.
//
// LoadKey is strict: the file must be a regular file owned by root or
// by the user running the daemon, must not be readable or writable by
// group or others, and must hold between MinKeySize and MaxKeySize
// bytes. A key others can read lets any local user impersonate a node,
// and a key others can write lets them swap it; refusing to start makes
// the mistake visible at once, and the fix is a chmod.

// DefaultKeyFile is where the daemon looks for the cluster key when
// cluster_key_file is not set, and where dlm_tool keygen writes it.
const DefaultKeyFile = "/etc/dlm/cluster.key"

// Bounds of a cluster key, in bytes (after trailing newlines are
// removed). MaxKeySize also bounds the file.
const (
	MinKeySize = 16
	MaxKeySize = 4096
)

// generatedKeyBytes is the number of random bytes GenerateKey draws.
const generatedKeyBytes = 32

// ErrKey: a cluster key file is missing, unsafe or unusable.
var ErrKey = errors.New("raftcluster: unusable cluster key")

// ParseKey returns the key held by the contents of a key file: b
// without its trailing newlines (and carriage returns). The key must be
// MinKeySize to MaxKeySize bytes; otherwise the error wraps ErrKey.
func ParseKey(b []byte) ([]byte, error) {
	if len(b) > MaxKeySize {
		return nil, fmt.Errorf("key file of more than %d bytes: %w", MaxKeySize, ErrKey)
	}
	key := bytes.TrimRight(b, "\r\n")
	switch {
	case len(key) == 0:
		return nil, fmt.Errorf("empty key: %w", ErrKey)
	case len(key) < MinKeySize:
		return nil, fmt.Errorf("key of %d bytes, need at least %d: %w", len(key), MinKeySize, ErrKey)
	}
	return bytes.Clone(key), nil
}

// LoadKey reads and checks the key file at path (see ParseKey for its
// contents). Every error names the file and wraps ErrKey; a missing
// file also wraps fs.ErrNotExist.
func LoadKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cluster key %s: %w: %w", path, ErrKey, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cluster key %s: %w: %w", path, ErrKey, err)
	}
	if err := checkKeyFile(fi); err != nil {
		return nil, fmt.Errorf("cluster key %s: %w", path, err)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxKeySize+1))
	if err != nil {
		return nil, fmt.Errorf("cluster key %s: %w: %w", path, ErrKey, err)
	}
	key, err := ParseKey(b)
	if err != nil {
		return nil, fmt.Errorf("cluster key %s: %w", path, err)
	}
	return key, nil
}

// checkKeyFile checks the type, permissions, owner and size of a key
// file.
func checkKeyFile(fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("not a regular file (%s): %w", fi.Mode().Type(), ErrKey)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("mode %#o lets group or others read or write it; make it private with chmod 600: %w", perm, ErrKey)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if uid := os.Geteuid(); st.Uid != 0 && int(st.Uid) != uid {
			return fmt.Errorf("owned by uid %d, not by root or this user (uid %d): %w", st.Uid, uid, ErrKey)
		}
	}
	if fi.Size() > MaxKeySize {
		return fmt.Errorf("%d bytes, more than %d: %w", fi.Size(), MaxKeySize, ErrKey)
	}
	return nil
}

// GenerateKey returns the contents of a new key file: 32 bytes from the
// system's random source, as hexadecimal digits and a newline.
func GenerateKey() ([]byte, error) {
	raw := make([]byte, generatedKeyBytes)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("drawing a random key: %w", err)
	}
	return append([]byte(hex.EncodeToString(raw)), '\n'), nil
}

// WriteNewKey writes a new key (GenerateKey) to path with mode 0600,
// creating the directory (mode 0755) if needed. It refuses to replace
// an existing file (the error wraps fs.ErrExist) unless force is set;
// with force the new file replaces the old one atomically.
func WriteNewKey(path string, force bool) error {
	data, err := GenerateKey()
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating the key's directory: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if !force {
			return fmt.Errorf("%s already exists; a new key must replace it on every node at once (force to overwrite): %w", path, fs.ErrExist)
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s exists and is not a regular file: %w", path, fs.ErrExist)
		}
	}
	if !force {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("creating the key file: %w", err)
		}
		return finishKeyFile(f, data, path)
	}
	f, err := os.CreateTemp(dir, ".cluster-key-*")
	if err != nil {
		return fmt.Errorf("creating the key file: %w", err)
	}
	tmp := f.Name()
	if err := finishKeyFile(f, data, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("replacing the key file: %w", err)
	}
	return nil
}

// finishKeyFile writes data to f (at path), makes it private and syncs
// it; on failure it removes the file.
func finishKeyFile(f *os.File, data []byte, path string) error {
	_, err := f.Write(data)
	if err == nil {
		err = f.Chmod(0o600)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("writing the key file: %w", err)
	}
	return nil
}
