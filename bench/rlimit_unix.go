//go:build unix

package bench

import "syscall"

// RaiseFileLimit raises the soft limit of open files to the hard limit:
// thousands of sessions need as many descriptors. It does what the system
// allows and reports nothing.
func RaiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}
