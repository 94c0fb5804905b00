package session

import (
	"testing"

	"go.uber.org/goleak"
)

// The handshake tests run both sides and a relay as goroutines over
// net.Pipe; none may outlive its test.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
