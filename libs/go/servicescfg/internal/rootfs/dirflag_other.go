//go:build !unix

package rootfs

// oDirectory: no named pipes to guard against here.
const oDirectory = 0
