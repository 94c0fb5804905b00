package directory

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/lanpeer/lanpeer/cryptosuite"
)

// Errors of NewClient.
var (
	// ErrBadURL: a directory URL that is not one of the forms NewClient
	// takes.
	ErrBadURL = errors.New("directory: bad directory URL")
	// ErrWrongDirectory: the directory's TLS certificate holds another key
	// than the peer ID its URL pins. Nothing was sent to it.
	ErrWrongDirectory = errors.New("directory: the directory presented another identity than the URL pins")
)

// NewClient returns a Client for the directory at rawURL, whose requests
// each take at most timeout (0: no bound but the contexts'). The URL is
// one of:
//
//	http://HOST:PORT           plain HTTP
//	https://PEERID@HOST:PORT   HTTPS pinned to the directory's identity
//	https://HOST:PORT          HTTPS checked against the system's roots
//
// A pinned URL is for `lanpeer directory --https`, whose certificate is
// self-signed with its identity key: the connection is accepted only if
// the SHA-256 of the certificate's SubjectPublicKeyInfo is PEERID
// (ErrWrongDirectory otherwise), checked inside the TLS handshake, before
// any request is sent; no certificate authority is consulted. The
// unpinned https form is for a directory behind a TLS-terminating proxy
// with a certificate from an authority the system trusts. Either way the
// records are signed by their peers and Lookup verifies them: TLS keeps
// the lookups private and the directory's answers from being replaced.
// The peer ID is removed from BaseURL (it is never sent, e.g. as a user
// name).
func NewClient(rawURL string, timeout time.Duration) (*Client, error) {
	u, pin, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // the directory is reached directly, as peers are
	if pin != nil {
		want := *pin
		tr.TLSClientConfig = &tls.Config{
			MinVersion:         tls.VersionTLS13, // as lanpeer directory --https serves
			InsecureSkipVerify: true,             // the chain is not checked: the key is, below
			VerifyConnection: func(cs tls.ConnectionState) error {
				if len(cs.PeerCertificates) == 0 {
					return fmt.Errorf("%w: no certificate", ErrWrongDirectory)
				}
				pk, err := cryptosuite.ParsePublicKey(cs.PeerCertificates[0].RawSubjectPublicKeyInfo)
				if err != nil {
					return fmt.Errorf("%w: its certificate key is not an identity key: %v", ErrWrongDirectory, err)
				}
				if got := pk.PeerID(); got != want {
					return fmt.Errorf("%w: %s presented %s, the URL pins %s", ErrWrongDirectory, u.Host, got, want)
				}
				return nil
			},
		}
	}
	return &Client{BaseURL: u.String(), HTTPClient: &http.Client{Transport: tr, Timeout: timeout}}, nil
}

// ParseURL checks a directory URL (the forms of NewClient) and returns it
// without the peer ID, and the pinned peer ID if it names one.
func ParseURL(rawURL string) (*url.URL, *cryptosuite.PeerID, error) {
	const forms = "want http://HOST:PORT, https://PEERID@HOST:PORT (a 'lanpeer directory --https', pinned to its peer ID) or https://HOST:PORT (checked against the system's certificate authorities)"
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" || u.Opaque != "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, nil, fmt.Errorf("%w %q: %s", ErrBadURL, rawURL, forms)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, nil, fmt.Errorf("%w %q: %s", ErrBadURL, rawURL, forms)
	}
	var pin *cryptosuite.PeerID
	if u.User != nil {
		if _, hasPassword := u.User.Password(); hasPassword || u.Scheme != "https" {
			return nil, nil, fmt.Errorf("%w %q: only an https URL names a peer ID before '@': %s", ErrBadURL, rawURL, forms)
		}
		id, err := cryptosuite.ParsePeerID(strings.ToLower(u.User.Username()))
		if err != nil {
			return nil, nil, fmt.Errorf("%w %q: before '@' comes the directory's peer ID, 64 hex characters", ErrBadURL, rawURL)
		}
		pin = &id
		u.User = nil
	}
	return u, pin, nil
}
