//go:build !unix

package fileread

import "os"

func open(path string) (*os.File, error) { return os.Open(path) }
