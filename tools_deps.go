//go:build tools

package main
import (
 _ "golang.org/x/crypto/chacha20poly1305"
 _ "github.com/vmihailenco/msgpack/v5"
 _ "github.com/hashicorp/yamux"
 _ "github.com/urfave/cli/v2"
 _ "go.uber.org/goleak"
)
func main(){}
