package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/lanpeer/lanpeer/cryptosuite"
	"github.com/urfave/cli/v2"
)

// identityFile is the identity key's file name in the lanpeer home: PKCS#8
// PEM, mode 0600.
const identityFile = "identity.pem"

// keyTypeNames lists the --key values, default first.
func keyTypeNames() []string {
	var names []string
	for _, k := range cryptosuite.KeyTypes() {
		names = append(names, string(k))
	}
	return names
}

func keyFlag() cli.Flag {
	return &cli.StringFlag{
		Name:  "key",
		Value: string(cryptosuite.DefaultKeyType),
		Usage: "identity key `TYPE`: " + strings.Join(keyTypeNames(), ", "),
	}
}

func keyType(c *cli.Context) (cryptosuite.KeyType, error) {
	kt, err := cryptosuite.ParseKeyType(c.String("key"))
	if err != nil {
		return "", usagef("--key: %v", err)
	}
	return kt, nil
}

func initCommand() *cli.Command {
	return command(&cli.Command{
		Name:      "init",
		Usage:     "create this peer's identity key and print its peer ID",
		UsageText: "lanpeer init [--home DIR] [--key TYPE] [--force]",
		Description: "Writes a new identity key to DIR/identity.pem (PKCS#8 PEM, mode 0600; DIR is created\n" +
			"with mode 0700) and prints the peer ID: the SHA-256 of the public key's SubjectPublicKeyInfo,\n" +
			"in hex. An existing identity is replaced only with --force.",
		Flags: []cli.Flag{
			homeFlag(),
			keyFlag(),
			&cli.BoolFlag{Name: "force", Usage: "replace an existing identity (its peer ID is lost for good)", DisableDefaultText: true},
		},
		Action: initAction,
	})
}

func initAction(c *cli.Context) error {
	if _, err := positionals(c, 0); err != nil {
		return err
	}
	kt, err := keyType(c)
	if err != nil {
		return err
	}
	home, err := homeDir(c)
	if err != nil {
		return err
	}
	force := c.Bool("force")
	var old *cryptosuite.Identity
	if force {
		old, _, _ = loadIdentity(home) // only to tell the user what was replaced
	}
	id, path, err := createIdentity(c.Context, home, kt, force)
	if err != nil {
		return err
	}
	if old != nil {
		fmt.Fprintf(c.App.ErrWriter, "lanpeer: replaced the identity with peer ID %s\n", old.PeerID())
	}
	fmt.Fprintf(c.App.ErrWriter, "lanpeer: wrote a new %s identity to %s\n", kt, path)
	fmt.Fprintln(c.App.Writer, id.PeerID())
	return nil
}

func idCommand() *cli.Command {
	return command(&cli.Command{
		Name:      "id",
		Usage:     "print this peer's ID (64 lowercase hex characters)",
		UsageText: "lanpeer id [--home DIR] [--create [--key TYPE]]",
		Description: "Prints the peer ID of the identity in DIR/identity.pem, alone on one line. With --create,\n" +
			"an identity is created first if there is none (of the --key type), so the command works\n" +
			"on a fresh machine and prints the same ID every time after.",
		Flags: []cli.Flag{
			homeFlag(),
			&cli.BoolFlag{Name: "create", Usage: "create an identity first if there is none", DisableDefaultText: true},
			keyFlag(),
		},
		Action: idAction,
	})
}

func idAction(c *cli.Context) error {
	if _, err := positionals(c, 0); err != nil {
		return err
	}
	create := c.Bool("create")
	if c.IsSet("key") && !create {
		return usagef("--key chooses the type of a new identity: use it with --create, or with 'lanpeer init'")
	}
	kt, err := keyType(c)
	if err != nil {
		return err
	}
	home, err := homeDir(c)
	if err != nil {
		return err
	}
	id, _, err := loadIdentity(home)
	if create && errors.As(err, new(*noIdentityError)) {
		var path string
		id, path, err = createIdentity(c.Context, home, kt, false)
		if errors.As(err, new(*identityExistsError)) {
			id, _, err = loadIdentity(home) // another process created it meanwhile
		} else if err == nil {
			fmt.Fprintf(c.App.ErrWriter, "lanpeer: created a new %s identity in %s\n", kt, path)
		}
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(c.App.Writer, id.PeerID())
	return nil
}

// noIdentityError: the home holds no identity file.
type noIdentityError struct{ path string }

func (e *noIdentityError) Error() string {
	return fmt.Sprintf("no identity at %s: run 'lanpeer init' to create one, or pass the --home that holds yours", e.path)
}

// identityExistsError: init without --force found an identity file.
type identityExistsError struct{ path string }

func (e *identityExistsError) Error() string {
	return fmt.Sprintf("an identity already exists at %s: use --force to replace it (its peer ID is lost for good), "+
		"or --home DIR to create another one elsewhere", e.path)
}

// loadIdentity reads home's identity file. It refuses a file that group or
// others may access, as ssh does, and reads at most
// cryptosuite.MaxIdentityPEM bytes.
func loadIdentity(home string) (*cryptosuite.Identity, string, error) {
	path := filepath.Join(home, identityFile)
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, path, &noIdentityError{path}
	}
	if err != nil {
		return nil, path, err
	}
	if !fi.Mode().IsRegular() { // checked before opening: opening a FIFO would block
		return nil, path, fmt.Errorf("identity %s is not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, path, err
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, path, err
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, path, fmt.Errorf("identity %s has mode %04o, so other users may read the private key; "+
			"run 'chmod 600 %s' (and make a new identity with 'lanpeer init --force' if others may have read it)",
			path, perm, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, cryptosuite.MaxIdentityPEM+1))
	if err != nil {
		return nil, path, err
	}
	if len(b) > cryptosuite.MaxIdentityPEM {
		return nil, path, fmt.Errorf("identity %s is larger than %d bytes: not an identity key", path, cryptosuite.MaxIdentityPEM)
	}
	id, err := cryptosuite.ParseIdentityPEM(b)
	if err != nil {
		return nil, path, fmt.Errorf("reading identity %s: %w", path, err)
	}
	return id, path, nil
}

// createIdentity generates an identity of type kt and writes it to home. It
// gives up, writing nothing, when ctx is done (RSA-4096 takes seconds).
func createIdentity(ctx context.Context, home string, kt cryptosuite.KeyType, force bool) (*cryptosuite.Identity, string, error) {
	path := filepath.Join(home, identityFile)
	if !force {
		// Fail before the slow part; writeIdentity checks again, atomically.
		if _, err := os.Lstat(path); err == nil {
			return nil, path, &identityExistsError{path}
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, path, err
	}
	type result struct {
		id  *cryptosuite.Identity
		err error
	}
	done := make(chan result, 1)
	go func() {
		id, err := cryptosuite.GenerateIdentity(kt)
		done <- result{id, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		return nil, path, ctx.Err()
	}
	if r.err != nil {
		return nil, path, fmt.Errorf("generating a %s key: %w", kt, r.err)
	}
	pem, err := r.id.MarshalPEM()
	if err != nil {
		return nil, path, err
	}
	if err := writeIdentity(home, pem, force); err != nil {
		return nil, path, err
	}
	return r.id, path, nil
}

// writeIdentity writes home/identity.pem atomically: the key goes to a
// temporary file of mode 0600 in home, is synced, and then is renamed over
// the old file (force) or hard-linked to the name, which fails if the name
// exists, so two concurrent inits never both win. home is created with mode
// 0700.
func writeIdentity(home string, pem []byte, force bool) error {
	if err := os.MkdirAll(home, 0o700); err != nil {
		return fmt.Errorf("creating the lanpeer home: %w", err)
	}
	path := filepath.Join(home, identityFile)
	tmp, err := os.CreateTemp(home, ".identity-*.tmp")
	if err != nil {
		return fmt.Errorf("writing the identity: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the link, or on failure; a no-op after the rename
	err = tmp.Chmod(0o600)
	if err == nil {
		_, err = tmp.Write(pem)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing the identity: %w", err)
	}
	if force {
		err = os.Rename(tmp.Name(), path)
	} else if err = os.Link(tmp.Name(), path); errors.Is(err, fs.ErrExist) {
		return &identityExistsError{path}
	}
	if err != nil {
		return fmt.Errorf("writing the identity: %w", err)
	}
	if d, err := os.Open(home); err == nil { // make the new name durable
		_ = d.Sync()
		d.Close()
	}
	return nil
}
