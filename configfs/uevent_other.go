//go:build !linux

package configfs

import (
	"context"
	"errors"
	"fmt"
)

// UeventListener receives the kernel's DLM lockspace uevents. Uevents
// exist only on Linux; elsewhere ListenUevents fails.
type UeventListener struct{}

// ListenUevents fails with an error wrapping errors.ErrUnsupported.
func ListenUevents() (*UeventListener, error) {
	return nil, fmt.Errorf("configfs: listen for uevents: %w", errors.ErrUnsupported)
}

// Next fails with an error wrapping errors.ErrUnsupported.
func (l *UeventListener) Next(ctx context.Context) (Event, error) {
	return Event{}, fmt.Errorf("configfs: receive uevent: %w", errors.ErrUnsupported)
}

// Close does nothing.
func (l *UeventListener) Close() error { return nil }
