package fileread

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	link := func(name, target string) string {
		p := filepath.Join(dir, name)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	small := write("small", "hello\n")
	exact := write("exact", strings.Repeat("x", 64))
	big := write("big", strings.Repeat("x", 65))
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	loop := link("loop", "loop")

	for _, tc := range []struct {
		name    string
		path    string
		want    string
		wantErr error  // errors.Is target
		errHas  string // substring of the message
	}{
		{name: "regular", path: small, want: "hello\n"},
		{name: "at the limit", path: exact, want: strings.Repeat("x", 64)},
		{name: "symlink to a regular file", path: link("good", small), want: "hello\n"},
		{name: "over the limit", path: big, wantErr: ErrTooLarge, errHas: "over the limit of 64 B"},
		{name: "symlink to /dev/zero", path: link("zero", "/dev/zero"), wantErr: ErrNotRegular, errHas: "a character device"},
		{name: "directory", path: dir, wantErr: ErrNotRegular, errHas: "a directory"},
		{name: "fifo", path: fifo, wantErr: ErrNotRegular, errHas: "a named pipe"},
		{name: "missing", path: filepath.Join(dir, "missing"), wantErr: fs.ErrNotExist},
		{name: "symlink loop", path: loop, wantErr: syscall.ELOOP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := ReadFile(tc.path, 64)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("ReadFile: %v", err)
				}
				if string(b) != tc.want {
					t.Fatalf("ReadFile = %q, want %q", b, tc.want)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("ReadFile error = %v, want %v", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.path) || !strings.Contains(err.Error(), tc.errHas) {
				t.Fatalf("ReadFile error %q does not name the path %s and %q", err, tc.path, tc.errHas)
			}
			if err := Check(tc.path, 64); !errors.Is(err, tc.wantErr) {
				t.Fatalf("Check error = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestSize(t *testing.T) {
	for n, want := range map[int64]string{ConfigLimit: "32 MiB", SecretLimit: "64 KiB", 100: "100 B", 1536: "1536 B"} {
		if got := Size(n); got != want {
			t.Errorf("Size(%d) = %q, want %q", n, got, want)
		}
	}
}
