//go:build tools

package main

import (
	_ "github.com/hashicorp/yamux"
	_ "github.com/urfave/cli/v2"
	_ "github.com/vmihailenco/msgpack/v5"
	_ "go.uber.org/goleak"
	_ "golang.org/x/crypto/chacha20poly1305"
)

func main() {}
