package node

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/lanpeer/lanpeer/session"
)

// ALPN is the TLS application protocol both sides offer.
const ALPN = "lanpeer/1"

// certNotAfter is RFC 5280's "no well-defined expiration date": the
// certificate stands for the identity key, which does not expire.
var certNotAfter = time.Date(9999, time.December, 31, 23, 59, 59, 0, time.UTC)

// newCertificate makes the self-signed TLS certificate of id: its subject
// and issuer name the peer ID, its key is the identity key, and it is
// signed by the identity key with RSASSA-PSS (SHA-256) or Ed25519, so an
// RSA identity key never makes a PKCS #1 v1.5 signature. The certificate's
// own signature carries no trust: peers check the key, never a chain.
func newCertificate(id *cryptosuite.Identity, now time.Time) (tls.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("node: certificate serial: %w", err)
	}
	name := pkix.Name{CommonName: id.PeerID().String()}
	tmpl := &x509.Certificate{
		SerialNumber:          serial.Add(serial, big.NewInt(1)), // positive, as RFC 5280 asks
		Subject:               name,
		Issuer:                name,
		NotBefore:             now.Add(-time.Hour).UTC(),
		NotAfter:              certNotAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	// TLS 1.3 signs CertificateVerify with the certificate's key; fix the
	// scheme to the one lanpeer's handshake uses for the same key type.
	var schemes []tls.SignatureScheme
	switch id.Public().Alg() {
	case cryptosuite.SigRSAPSSSHA256:
		tmpl.SignatureAlgorithm = x509.SHA256WithRSAPSS
		schemes = []tls.SignatureScheme{tls.PSSWithSHA256}
	case cryptosuite.SigEd25519:
		tmpl.SignatureAlgorithm = x509.PureEd25519
		schemes = []tls.SignatureScheme{tls.Ed25519}
	default:
		return tls.Certificate{}, fmt.Errorf("node: no certificate for a %v identity", id.Public().Alg())
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, id.Public().CryptoPublicKey(), id.Signer())
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("node: making the certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("node: making the certificate: %w", err)
	}
	return tls.Certificate{
		Certificate:                  [][]byte{der},
		PrivateKey:                   id.Signer(),
		Leaf:                         leaf,
		SupportedSignatureAlgorithms: schemes,
	}, nil
}

// peerKey returns the identity key of the peer's TLS certificate: there
// must be exactly one certificate, and its SubjectPublicKeyInfo must be a
// canonical, allowed identity key.
func peerKey(cs *tls.ConnectionState) (*cryptosuite.PublicKey, error) {
	if len(cs.PeerCertificates) != 1 {
		return nil, fmt.Errorf("%w: %d certificates, want exactly 1", ErrBadCertificate, len(cs.PeerCertificates))
	}
	pk, err := peerKeys.parse(cs.PeerCertificates[0].RawSubjectPublicKeyInfo)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCertificate, err)
	}
	return pk, nil
}

// keyCache holds identity keys parsed from certificates, by their exact
// SubjectPublicKeyInfo bytes, so that a peer that connects again is not
// parsed again: cryptosuite.ParsePublicKey is a function of those bytes
// (it parses, re-encodes to check the encoding is canonical, and hashes
// the peer ID), and a *cryptosuite.PublicKey never changes. Only keys
// that parsed are kept; what each connection decides about a key (the
// pin, known_peers, the allow list, the handshake's own key) is decided
// again every time.
type keyCache struct {
	mu sync.Mutex
	m  map[string]*cryptosuite.PublicKey
}

// maxCachedKeys bounds a keyCache: at most this many keys of at most
// cryptosuite.MaxSPKI bytes. A full cache starts again empty.
const maxCachedKeys = 1024

// peerKeys is the process's cache of the keys of certificates seen.
var peerKeys keyCache

func (kc *keyCache) parse(spki []byte) (*cryptosuite.PublicKey, error) {
	kc.mu.Lock()
	pk, ok := kc.m[string(spki)]
	kc.mu.Unlock()
	if ok {
		return pk, nil
	}
	pk, err := cryptosuite.ParsePublicKey(spki)
	if err != nil {
		return nil, err
	}
	kc.mu.Lock()
	if kc.m == nil || len(kc.m) >= maxCachedKeys {
		kc.m = make(map[string]*cryptosuite.PublicKey)
	}
	kc.m[string(spki)] = pk
	kc.mu.Unlock()
	return pk, nil
}

// serverTLSConfig is the listening side's TLS profile: TLS 1.3 only, a
// client certificate required but not verified against any authority (the
// key is checked, and the lanpeer handshake must use the same key), no
// session resumption.
func serverTLSConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:             tls.VersionTLS13,
		MaxVersion:             tls.VersionTLS13,
		Certificates:           []tls.Certificate{cert},
		ClientAuth:             tls.RequireAnyClientCert,
		SessionTicketsDisabled: true,
		NextProtos:             []string{ALPN},
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := peerKey(&cs)
			return err
		},
	}
}

// clientTLSConfig is the dialing side's TLS profile. InsecureSkipVerify
// only turns off chain verification; check decides on the server's key
// before the handshake completes, so nothing is sent to a server that
// fails it.
func clientTLSConfig(cert tls.Certificate, check func(*cryptosuite.PublicKey) error) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		MaxVersion:         tls.VersionTLS13,
		Certificates:       []tls.Certificate{cert},
		InsecureSkipVerify: true,
		NextProtos:         []string{ALPN},
		VerifyConnection: func(cs tls.ConnectionState) error {
			pk, err := peerKey(&cs)
			if err != nil {
				return err
			}
			return check(pk)
		},
	}
}

// channelBinding is the TLS exporter value the lanpeer handshake binds:
// 32 bytes under session.ExporterLabel with an empty context.
func channelBinding(cs *tls.ConnectionState) ([]byte, error) {
	b, err := cs.ExportKeyingMaterial(session.ExporterLabel, nil, session.BindingSize)
	if err != nil {
		return nil, fmt.Errorf("node: TLS exporter: %w", err)
	}
	if len(b) != session.BindingSize {
		return nil, errors.New("node: TLS exporter gave a short value")
	}
	return b, nil
}
