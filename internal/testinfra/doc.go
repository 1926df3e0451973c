// Package testinfra runs real peer servers for integration tests: binaries
// from Debian packages, started per test on free 127.0.0.1 ports with their
// state in temp dirs, and stopped by PID when the test ends.
//
// # Availability rule
//
// Need makes sure a Debian package is installed. A missing package is
// installed with apt-get when the test runs as root (apt-get update once per
// process, DEBIAN_FRONTEND=noninteractive, never starting services: a
// /usr/sbin/policy-rc.d that exits 101 is written if absent). apt-get runs
// are serialized across test binaries with a file lock (see LockPath), and
// the package state is checked again once the lock is held.
//
// When a peer cannot be installed or started, the test is skipped with the
// reason, unless the environment variable CI is non-empty: then the test
// fails. Developers without root or network can run the suite; CI cannot
// silently lose coverage. `make test` runs cmd/install first so package
// installation does not eat into test timeouts.
//
// # Processes
//
// Start runs a command in its own process group, with stdout and stderr in a
// log file under t.TempDir(), and stops it in t.Cleanup (SIGTERM to the
// group, SIGKILL after 10 s). When the test failed, the last lines of the log
// are printed with t.Log. Process.Kill sends SIGKILL at once for crash tests.
//
// # Adding a peer
//
//  1. Add the package to the `make test` install line and to the table in
//     DESIGN.md ("Test infrastructure").
//  2. Write StartX(t testing.TB, ...) in its own file: call Need for the
//     package and binaries, write its config into t.TempDir(), pick ports with
//     FreePort, Start the binary with loopback-only listen flags, and wait for
//     readiness with waitReady (an HTTP endpoint, usually). Return a small
//     struct with the addresses, the dir and the *Process.
//  3. Add a test in this package that starts it and makes one real request.
package testinfra
