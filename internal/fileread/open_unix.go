//go:build unix

package fileread

import (
	"os"
	"syscall"
)

// open opens path for reading without blocking on a FIFO swapped in after
// Check (O_NONBLOCK changes nothing for a regular file).
func open(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
}
