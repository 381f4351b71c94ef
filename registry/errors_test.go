package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

func TestRetryable(t *testing.T) {
	status := func(code int) error { return &transport.Error{StatusCode: code} }
	dial := &url.Error{Op: "Get", URL: "http://localhost:5000/v2/", Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"429", status(429), true},
		{"500", status(500), true},
		{"502", status(502), true},
		{"503 wrapped", fmt.Errorf("list: %w", status(503)), true},
		{"408", status(408), true},
		{"401", status(401), false},
		{"403", status(403), false},
		{"404", status(404), false},
		{"400", status(400), false},
		{"405", status(405), false},
		{"connection refused", dial, true},
		{"reset", syscall.ECONNRESET, true},
		{"unexpected EOF", io.ErrUnexpectedEOF, true},
		{"deadline", context.DeadlineExceeded, true},
		{"canceled", context.Canceled, false},
		{"malformed JSON", &json.SyntaxError{}, false},
		{"malformed", malformed("no digest"), false},
		{"other", errors.New("something"), false},
		{"wrapped 401", wrap("h", "op", status(401)), false},
		{"wrapped 503", wrap("h", "op", status(503)), true},
	} {
		if got := Retryable(tc.err); got != tc.want {
			t.Errorf("%s: Retryable(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

func TestErrorMessages(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&transport.Error{StatusCode: 401}, "registry localhost:5000: credentials refused (401): list the catalog: check Username and Password"},
		{&transport.Error{StatusCode: 403}, "registry localhost:5000: access denied (403): list the catalog: the credentials lack permission"},
		{&transport.Error{StatusCode: 503}, "registry localhost:5000: unavailable (503): list the catalog: unexpected status code 503 Service Unavailable"},
		{&transport.Error{StatusCode: 429}, "registry localhost:5000: rate limited (429): list the catalog: unexpected status code 429 Too Many Requests"},
		{syscall.ECONNREFUSED, "registry localhost:5000: unreachable: list the catalog: connection refused"},
		{context.DeadlineExceeded, "registry localhost:5000: timed out: list the catalog: context deadline exceeded"},
	} {
		if got := wrap("localhost:5000", "list the catalog", tc.err).Error(); got != tc.want {
			t.Errorf("got  %q\nwant %q", got, tc.want)
		}
	}
	if wrap("h", "op", nil) != nil {
		t.Error("wrap(nil) != nil")
	}
	inner := wrap("h", "op", &transport.Error{StatusCode: 401})
	if got := wrap("h", "other", fmt.Errorf("x: %w", inner)); !errors.Is(got, inner) {
		t.Errorf("wrap re-wrapped an *Error: %v", got)
	}
}
