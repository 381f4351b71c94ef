// Package registry is Vigil's view of an OCI registry it watches for
// continuous scanning: which repositories it wants (Config), what the
// registry says was pushed or deleted (ParseEvents, for registries that send
// CNCF Distribution notifications), and what it holds now (Poll, for those
// that send none). Errors name the registry and say what failed in words a
// user understands; Retryable tells a transient failure from one that needs
// the configuration fixed.
package registry

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Config describes one watched registry.
type Config struct {
	// URL is "https://host[:port]" or "http://host:port" (plain HTTP, for
	// registries on a private network or in tests). No path, query or
	// user information.
	URL string
	// Username and Password, when set, are sent as HTTP basic credentials
	// (exchanged for a bearer token when the registry asks for one). Both or
	// neither.
	Username, Password string
	// Include and Exclude are glob patterns on repository names, in path.Match
	// syntax ("*" does not cross "/": "team/*" matches "team/app", not
	// "team/a/b"). An empty Include means every repository; Exclude wins.
	Include, Exclude []string
	// Transport, when set, is the base transport (see Guard); requests to
	// an https registry stay on TLS whatever it is.
	Transport http.RoundTripper `json:"-"`
}

// Validate reports the first problem with c, if any.
func (c Config) Validate() error {
	if strings.TrimSpace(c.URL) == "" {
		return errors.New("registry: URL is empty; want https://host[:port] or http://host:port")
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return fmt.Errorf("registry: bad URL %q: %v", c.URL, err)
	}
	switch u.Scheme {
	case "https", "http":
	case "":
		return fmt.Errorf("registry: bad URL %q: no scheme; want https://%s or http://%s", c.URL, c.URL, c.URL)
	default:
		return fmt.Errorf("registry: bad URL %q: scheme %q, want https or http", c.URL, u.Scheme)
	}
	if u.Host == "" {
		return fmt.Errorf("registry: bad URL %q: no host", c.URL)
	}
	if u.User != nil {
		return fmt.Errorf("registry: bad URL %q: put credentials in Username and Password, not in the URL", redactURL(u))
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("registry: bad URL %q: want only scheme and host[:port], no path, query or fragment", c.URL)
	}
	if h := u.Hostname(); net.ParseIP(h) == nil && !hostRE.MatchString(h) {
		return fmt.Errorf("registry: bad URL %q: %q is not a host name or IP address", c.URL, h)
	}
	if _, err := name.NewRegistry(u.Host, name.StrictValidation); err != nil {
		return fmt.Errorf("registry: bad URL %q: host %q: %v", c.URL, u.Host, err)
	}
	if (c.Username == "") != (c.Password == "") {
		return errors.New("registry: set both Username and Password, or neither")
	}
	for _, list := range []struct {
		field    string
		patterns []string
	}{{"Include", c.Include}, {"Exclude", c.Exclude}} {
		for _, p := range list.patterns {
			if p == "" {
				return fmt.Errorf("registry: %s has an empty pattern", list.field)
			}
			if _, err := path.Match(p, ""); err != nil {
				return fmt.Errorf("registry: %s pattern %q is malformed (path.Match syntax: *, ?, [a-z], \\ escapes): %v", list.field, p, err)
			}
		}
	}
	return nil
}

// Wants reports whether repo is to be watched: it matches an Include pattern
// (or Include is empty) and no Exclude pattern. Malformed patterns match
// nothing; Validate reports them.
func (c Config) Wants(repo string) bool {
	for _, p := range c.Exclude {
		if ok, _ := path.Match(p, repo); ok {
			return false
		}
	}
	if len(c.Include) == 0 {
		return true
	}
	for _, p := range c.Include {
		if ok, _ := path.Match(p, repo); ok {
			return true
		}
	}
	return false
}

// Host is the registry's host[:port] as it appears in image references
// ("localhost:5000/team/app@sha256:..."), or "" when URL does not parse.
func (c Config) Host() string {
	u, err := url.Parse(c.URL)
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Host)
}

// plainHTTP reports whether the registry is to be spoken to without TLS.
func (c Config) plainHTTP() bool {
	u, err := url.Parse(c.URL)
	return err == nil && u.Scheme == "http"
}

var hostRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$`)

func redactURL(u *url.URL) string {
	v := *u
	v.User = nil
	return v.String()
}
