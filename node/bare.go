package node

import (
	"crypto/tls"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/lanpeer/lanpeer/cryptosuite"
)

// BareTransport is the transport a peer runs lanpeer on, without lanpeer:
// the TLS profiles and the yamux configuration that Listen and Dial use.
// It exists for baselines (lanpeer bench measures the same transport with
// no lanpeer logic beside the real thing); a peer never talks lanpeer
// over it.
type BareTransport struct {
	// Server is the listening side's TLS profile, with the certificate
	// of the server identity.
	Server *tls.Config
	// Client is the dialing side's TLS profile, with the certificate of
	// the client identity; it accepts any server key (a baseline pins
	// nothing).
	Client *tls.Config
	// Yamux is the multiplexer's configuration under cfg's limits.
	Yamux *yamux.Config
}

// NewBareTransport returns the transport of a server with identity server
// and a client with identity client, under cfg's limits (cfg.Identity is
// not used; nil cfg: the defaults).
func NewBareTransport(server, client *cryptosuite.Identity, cfg *Config) (*BareTransport, error) {
	c := Config{}
	if cfg != nil {
		c = *cfg
	}
	c.Identity = server
	lim, err := c.resolve()
	if err != nil {
		return nil, err
	}
	scert, err := newCertificate(server, time.Now())
	if err != nil {
		return nil, err
	}
	ccert, err := certificateFor(client, time.Now())
	if err != nil {
		return nil, err
	}
	return &BareTransport{
		Server: serverTLSConfig(scert),
		Client: clientTLSConfig(ccert, func(*cryptosuite.PublicKey) error { return nil }),
		Yamux:  yamuxConfig(&lim, c.logger()),
	}, nil
}

// ChannelBinding returns the TLS exporter value a lanpeer handshake binds
// on cs, as the handshake computes it.
func ChannelBinding(cs *tls.ConnectionState) ([]byte, error) { return channelBinding(cs) }
