package multicast

import (
	"testing"

	"go.uber.org/goleak"
)

// Every Conn starts readers and a watcher; none may outlive its test.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
