package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/mailsys/mailsys/userdata"
)

// account is one line of the accounts file.
type account struct {
	address string // lower case
	hash    string // argon2id, as userdata.HashPassword makes it
	name    string
}

// parseAccounts reads the accounts file: one account per line, its address,
// its password's argon2id hash (in the PHC format userdata.HashPassword
// writes; `custom -hash` prints one) and, optionally, a display name.
// Blank lines and lines starting with # are skipped. Every problem is
// reported, with its line number.
func parseAccounts(r io.Reader) ([]account, error) {
	var accounts []account
	var errs []error
	seen := map[string]int{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 2 {
			errs = append(errs, fmt.Errorf("line %d: want ADDRESS HASH [NAME]", n))
			continue
		}
		a := account{address: strings.ToLower(fields[0]), hash: fields[1], name: strings.Join(fields[2:], " ")}
		if _, domain, ok := strings.Cut(a.address, "@"); !ok || domain == "" {
			errs = append(errs, fmt.Errorf("line %d: %q is not an address", n, fields[0]))
			continue
		}
		if _, err := userdata.CheckPassword("", a.hash); err != nil {
			errs = append(errs, fmt.Errorf("line %d: %s: %w", n, a.address, err))
			continue
		}
		if first, dup := seen[a.address]; dup {
			errs = append(errs, fmt.Errorf("line %d: %s is on line %d already", n, a.address, first))
			continue
		}
		seen[a.address] = n
		accounts = append(accounts, a)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	return accounts, errors.Join(errs...)
}

// directory is the host program's UserDB: mailboxes, folders and the
// message index in a userdata.Memory, and the passwords in the accounts
// file, checked by directory's own Authenticate in place of Memory's. The
// users it makes in the Memory have no password there, so no other path
// logs them in.
type directory struct {
	*userdata.Memory
	hashes  map[string]string // primary address -> hash
	dummy   string            // a hash of nothing, checked for unknown addresses
	limiter *userdata.PasswordLimiter
}

// newDirectory makes the accounts' domains and users in mem.
func newDirectory(ctx context.Context, mem *userdata.Memory, accounts []account, limiter *userdata.PasswordLimiter) (*directory, error) {
	d := &directory{Memory: mem, hashes: map[string]string{}, limiter: limiter}
	for _, a := range accounts {
		_, domain, _ := strings.Cut(a.address, "@")
		if err := mem.CreateDomain(ctx, userdata.Domain{Name: domain}); err != nil && !errors.Is(err, userdata.ErrExists) {
			return nil, fmt.Errorf("domain %s: %w", domain, err)
		}
		if _, err := mem.CreateUser(ctx, userdata.NewUser{Address: a.address, Name: a.name}); err != nil {
			return nil, fmt.Errorf("user %s: %w", a.address, err)
		}
		d.hashes[a.address] = a.hash
	}
	var err error
	if d.dummy, err = userdata.HashPassword("", userdata.DefaultArgon2()); err != nil {
		return nil, err
	}
	return d, nil
}

// argon2Memory is what one password check costs in memory at the default
// parameters, the weight of a check in the PasswordLimiter.
var argon2Memory = int64(userdata.DefaultArgon2().Memory) << 10

// Authenticate checks password against the accounts file, keeping the
// contract of userdata.Authenticator: ErrAuthFailed for an unknown address
// or a wrong password alike (an unknown address costs a check too),
// ErrDisabled, ErrProtocol, and ErrBusy when too many checks run at once.
func (d *directory) Authenticate(ctx context.Context, address, password string, p userdata.Protocol) (userdata.User, error) {
	u, lookupErr := d.LookupAddress(ctx, address)
	hash, known := d.hashes[u.Address]
	if lookupErr != nil || !known {
		hash = d.dummy
	}
	release, err := d.limiter.Acquire(ctx, argon2Memory)
	if err != nil {
		return userdata.User{}, err
	}
	ok, err := userdata.CheckPassword(password, hash)
	release()
	switch {
	case err != nil:
		return userdata.User{}, err
	case lookupErr != nil && !errors.Is(lookupErr, userdata.ErrNotFound):
		return userdata.User{}, lookupErr
	case !ok || lookupErr != nil || !known:
		return userdata.User{}, userdata.ErrAuthFailed
	case u.Disabled:
		return userdata.User{}, userdata.ErrDisabled
	}
	limits, err := d.Limits(ctx, u.ID)
	if err != nil {
		return userdata.User{}, err
	}
	if limits.Protocols != 0 && limits.Protocols&p == 0 {
		return userdata.User{}, userdata.ErrProtocol
	}
	return u, nil
}
