//go:build unix

package rootfs

import "syscall"

// oDirectory makes opening anything but a folder fail at once.
const oDirectory = syscall.O_DIRECTORY
