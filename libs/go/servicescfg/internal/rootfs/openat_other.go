//go:build !linux

package rootfs

import (
	"errors"
	"syscall"
)

// keepFolders: elsewhere every file is opened through the root.
const keepFolders = false

// oDirectory: Go offers no portable O_DIRECTORY; a folder's name is
// opened without it.
const oDirectory = 0

var errNotRead = errors.New("not read from a kept folder")

func openat(int, string, int) (int, error) { return -1, syscall.ENOTSUP }

func readFd(int, int64) ([]byte, error) { return nil, errNotRead }
