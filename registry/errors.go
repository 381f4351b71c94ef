package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Error is a failure to talk to a registry, described for a user:
//
//	registry localhost:5000: credentials refused (401): list the catalog: check Username and Password
//	registry localhost:5000: unavailable (503): list the catalog: GET http://...: unexpected status code 503
type Error struct {
	Host   string // registry host[:port]
	Op     string // what Vigil was doing: "list the catalog", "list the tags of team/app"
	What   string // what went wrong: "credentials refused", "unavailable", "unreachable", ...
	Status int    // the HTTP status, 0 when there was no response
	Err    error  // the underlying error
	retry  bool
}

func (e *Error) Error() string {
	msg := "registry " + e.Host + ": " + e.What
	if e.Status != 0 {
		msg += fmt.Sprintf(" (%d)", e.Status)
	}
	if e.Op != "" {
		msg += ": " + e.Op
	}
	switch e.Status {
	case http.StatusUnauthorized:
		return msg + ": check Username and Password"
	case http.StatusForbidden:
		return msg + ": the credentials lack permission"
	}
	if e.Err != nil {
		msg += ": " + detail(e.Err)
	}
	return msg
}

// detail is the part of err that says what happened. go-containerregistry
// tries https and http at once for plain-HTTP registries and reports both
// failures; the HTTP status, or the network failure, is what matters.
func detail(err error) string {
	var te *transport.Error
	if errors.As(err, &te) {
		return strings.Join(strings.Fields(te.Error()), " ")
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return opErr.Error()
	}
	return err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Retryable reports whether err is worth retrying later unchanged: network
// failures, timeouts, HTTP 408, 429 and 5xx. Refused credentials (401, 403),
// missing things (404), other 4xx, TLS certificate problems, malformed
// responses and cancellation are not: retrying them would fail the same way.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	var e *Error
	if errors.As(err, &e) {
		return e.retry
	}
	_, _, retry := classify(err)
	return retry
}

// wrap describes err, met while doing op against host, for a user.
func wrap(host, op string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	what, status, retry := classify(err)
	return &Error{Host: host, Op: op, What: what, Status: status, Err: err, retry: retry}
}

// classify says what went wrong, with the HTTP status if any, and whether
// trying again later could help.
func classify(err error) (what string, status int, retry bool) {
	var te *transport.Error
	if errors.As(err, &te) {
		s := te.StatusCode
		switch {
		case s == http.StatusUnauthorized:
			return "credentials refused", s, false
		case s == http.StatusForbidden:
			return "access denied", s, false
		case s == http.StatusNotFound:
			return "not found", s, false
		case s == http.StatusTooManyRequests:
			return "rate limited", s, true
		case s == http.StatusRequestTimeout:
			return "timed out", s, true
		case s == http.StatusMethodNotAllowed || s == http.StatusNotImplemented:
			return "unsupported request", s, false
		case s >= 500:
			return "unavailable", s, true
		case s >= 400:
			return "request rejected", s, false
		default:
			return "unexpected response", s, false
		}
	}
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled", 0, false
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out", 0, true
	}
	var (
		unknownCA *x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		certErr   x509.CertificateInvalidError
		recErr    tls.RecordHeaderError
	)
	if errors.As(err, &unknownCA) || errors.As(err, &hostErr) || errors.As(err, &certErr) || errors.As(err, &recErr) {
		return "TLS failure", 0, false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timed out", 0, true
	}
	var (
		opErr  *net.OpError
		dnsErr *net.DNSError
	)
	if errors.As(err, &opErr) || errors.As(err, &dnsErr) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return "unreachable", 0, true
	}
	var (
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
		malformed *malformedError
	)
	if errors.As(err, &syntaxErr) || errors.As(err, &typeErr) || errors.As(err, &malformed) {
		return "malformed response", 0, false
	}
	return "failed", 0, false
}

// malformedError marks a response Vigil could not make sense of.
type malformedError struct{ msg string }

func (e *malformedError) Error() string { return e.msg }

func malformed(format string, args ...any) error {
	return &malformedError{fmt.Sprintf(format, args...)}
}
