package rootfs

import (
	"errors"
	"syscall"
)

// keepFolders: kept folders open names with openat(2) (folders.go).
const keepFolders = true

// oDirectory makes opening anything but a folder fail at once: a named
// pipe in a folder's place is not waited on.
const oDirectory = syscall.O_DIRECTORY

// openat opens name in the folder dirfd, never following a link.
func openat(dirfd int, name string, flags int) (int, error) {
	for {
		fd, err := syscall.Openat(dirfd, name, flags|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
		if err != syscall.EINTR {
			return fd, err
		}
	}
}

// errNotRead is any reason readFd did not read a file; the root then reads
// it and says why.
var errNotRead = errors.New("not read from a kept folder")

// readFd reads and closes fd when it is a regular file of at most limit
// bytes.
func readFd(fd int, limit int64) ([]byte, error) {
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFREG || st.Size > limit {
		return nil, errNotRead
	}
	buf := make([]byte, 0, st.Size+1) // +1: the read that sees the end
	for {
		n, err := syscall.Read(fd, buf[len(buf):cap(buf)])
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return nil, errNotRead
		case n == 0:
			return buf, nil
		}
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return nil, errNotRead
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)] // the file grew: make room
		}
	}
}
