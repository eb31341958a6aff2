package mtasts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"time"
)

// ErrFetch wraps the reason HTTPSFetcher got no policy file: the
// request failed, or the answer was not a 200 text/plain of at most
// MaxPolicySize bytes.
var ErrFetch = errors.New("mtasts: policy not fetched")

// Fetcher gets the policy file of a domain. Fetch returns its bytes
// (which the caller then owns), or an error if it could not: the Cache
// treats every error alike, as no new policy to be had. It honours ctx
// and is safe for concurrent use.
type Fetcher interface {
	Fetch(ctx context.Context, domain string) ([]byte, error)
}

// FetcherFunc adapts a function to a Fetcher.
type FetcherFunc func(ctx context.Context, domain string) ([]byte, error)

// Fetch implements Fetcher by calling f.
func (f FetcherFunc) Fetch(ctx context.Context, domain string) ([]byte, error) { return f(ctx, domain) }

// DefaultFetchTimeout bounds a fetch by an HTTPSFetcher without a
// Client.
const DefaultFetchTimeout = 30 * time.Second

// HTTPSFetcher fetches policies as RFC 8461 §3.3 says: GET
// https://mta-sts.<domain>/.well-known/mta-sts.txt, with a certificate
// the Client's transport verifies for that name (the default
// transport's: the system's roots), no redirect followed, and only a
// 200 answer of type text/plain and at most MaxPolicySize bytes taken.
// Its zero value is ready to use.
type HTTPSFetcher struct {
	// Client makes the requests; nil means one with the default
	// transport and a timeout of DefaultFetchTimeout. Fetch copies it
	// and overrides its CheckRedirect, so that redirects are not
	// followed whatever it says.
	Client *http.Client
}

// Fetch implements Fetcher. Its errors wrap ErrFetch, or ErrInvalid for
// a domain that is not a host name.
func (f HTTPSFetcher) Fetch(ctx context.Context, domain string) ([]byte, error) {
	d, err := canonical(domain)
	if err != nil {
		return nil, err
	}
	c := http.Client{Timeout: DefaultFetchTimeout}
	if f.Client != nil {
		c = *f.Client
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	url := "https://mta-sts." + d + "/.well-known/mta-sts.txt"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrFetch, url, err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFetch, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		if loc := resp.Header.Get("Location"); loc != "" {
			return nil, fmt.Errorf("%w: %s: %s, a redirect to %q (not followed)", ErrFetch, url, resp.Status, cut(loc))
		}
		return nil, fmt.Errorf("%w: %s: %s", ErrFetch, url, resp.Status)
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != "text/plain" {
		return nil, fmt.Errorf("%w: %s: Content-Type %q, not text/plain", ErrFetch, url, cut(resp.Header.Get("Content-Type")))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxPolicySize+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: %s: %w", ErrFetch, url, err)
	case len(body) > MaxPolicySize:
		return nil, fmt.Errorf("%w: %s: more than %d bytes", ErrFetch, url, MaxPolicySize)
	}
	return body, nil
}
