package main

import (
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vigil-project/vigil"
	"github.com/vigil-project/vigil/httpapi"
	"github.com/vigil-project/vigil/sqlstore"
)

// clientFlags are the flags of commands that talk to a server.
type clientFlags struct {
	server, key, format *string
}

func registerClient(fs interface {
	String(name, value, usage string) *string
}) clientFlags {
	return clientFlags{
		server: fs.String("server", "", "server URL (default $VIGIL_SERVER)"),
		key:    fs.String("key", "", "API key (default $VIGIL_KEY)"),
		format: fs.String("format", "table", "table or json"),
	}
}

// waitScan polls a scan until it is done or failed, or the wait is over.
func (c *client) waitScan(ctx context.Context, id string, wait time.Duration) (*sqlstore.Scan, error) {
	deadline := time.Now().Add(wait)
	for {
		var sc sqlstore.Scan
		if err := c.do(ctx, http.MethodGet, "/v1/scans/"+url.PathEscape(id), nil, &sc); err != nil {
			return nil, err
		}
		if sc.Status == sqlstore.ScanDone || sc.Status == sqlstore.ScanFailed || time.Now().After(deadline) {
			return &sc, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (e *env) coverage(ctx context.Context, args []string) int {
	if len(args) == 0 || (args[0] != "list" && args[0] != "stats") {
		fmt.Fprint(e.stderr, "Usage: vigil coverage <list|stats> [--server URL] [--key KEY] [--type TYPE] [--status ACTIVE|INACTIVE] [--reason REASON] [--tag k=v]… [--format table|json]\n")
		return exitUsage
	}
	fs := newFlagSet(e, "coverage "+args[0], "vigil coverage list|stats [--server URL] [--key KEY] [--type TYPE] [--status ACTIVE|INACTIVE] [--reason REASON] [--tag k=v]… [--format table|json]")
	cf := registerClient(fs)
	typ := fs.String("type", "", "list: host, image or function")
	status := fs.String("status", "", "list: ACTIVE or INACTIVE")
	reason := fs.String("reason", "", "list: one reason ("+strings.Join(vigil.CoverageReasons, ", ")+")")
	var tags multiFlag
	fs.Var(&tags, "tag", "list: only resources with this tag, key=value (repeatable)")
	if pos, err := parseFlags(fs, args[1:]); err != nil || len(pos) > 0 {
		if err == nil {
			fs.Usage()
		}
		return exitUsage
	}
	if err := oneOf(*cf.format, "table", "json"); err != nil {
		return e.fail(err)
	}
	c, err := e.newClient(*cf.server, *cf.key)
	if err != nil {
		return e.fail(err)
	}
	if args[0] == "stats" {
		var out struct {
			Stats []vigil.CoverageStat `json:"stats"`
		}
		if err := c.do(ctx, http.MethodGet, "/v1/coverage/stats", nil, &out); err != nil {
			return e.fail(err)
		}
		if *cf.format == "json" {
			return e.printJSON(out)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ACCOUNT\tTYPE\tTOTAL\tACTIVE\tINACTIVE\tREASONS")
		for _, s := range out.Stats {
			var rs []string
			for _, r := range vigil.CoverageReasons {
				if n := s.ByReason[r]; n > 0 {
					rs = append(rs, fmt.Sprintf("%s=%d", r, n))
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\n", s.Account, s.ResourceType, s.Total, s.Active, s.Inactive, strings.Join(rs, ","))
		}
		tw.Flush()
		return exitOK
	}
	q := url.Values{"limit": {"1000"}}
	for k, v := range map[string]string{"resourceType": *typ, "scanStatus": *status, "reason": *reason} {
		if v != "" {
			q.Set(k, v)
		}
	}
	for _, t := range tags {
		q.Add("tag", t)
	}
	var all []vigil.Coverage
	for {
		var page struct {
			Coverage   []vigil.Coverage `json:"coverage"`
			NextCursor string           `json:"nextCursor"`
		}
		if err := c.do(ctx, http.MethodGet, "/v1/coverage?"+q.Encode(), nil, &page); err != nil {
			return e.fail(err)
		}
		all = append(all, page.Coverage...)
		if page.NextCursor == "" {
			break
		}
		q.Set("cursor", page.NextCursor)
	}
	if *cf.format == "json" {
		return e.printJSON(map[string]any{"coverage": nonNilSlice(all)})
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTYPE\tNAME\tACCOUNT\tSTATUS\tREASON\tLAST SCANNED\tMESSAGE")
	for _, cv := range all {
		last := "-"
		if !cv.LastScannedAt.IsZero() {
			last = cv.LastScannedAt.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cv.ResourceID, cv.ResourceType, cv.ResourceName, cv.Account, cv.ScanStatus, dash(cv.Reason), last, oneLine(cv.Message, 80))
	}
	tw.Flush()
	return exitOK
}

func nonNilSlice[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n-1] + "…"
	}
	return s
}

func (e *env) usage(ctx context.Context, args []string) int {
	fs := newFlagSet(e, "usage", "vigil usage [--server URL] [--key KEY] [--from YYYY-MM] [--to YYYY-MM] [--format table|json]")
	cf := registerClient(fs)
	from := fs.String("from", "", "first month, YYYY-MM")
	to := fs.String("to", "", "last month, YYYY-MM")
	if pos, err := parseFlags(fs, args); err != nil || len(pos) > 0 {
		if err == nil {
			fs.Usage()
		}
		return exitUsage
	}
	if err := oneOf(*cf.format, "table", "json"); err != nil {
		return e.fail(err)
	}
	c, err := e.newClient(*cf.server, *cf.key)
	if err != nil {
		return e.fail(err)
	}
	q := url.Values{}
	if *from != "" {
		q.Set("from", *from)
	}
	if *to != "" {
		q.Set("to", *to)
	}
	var out struct {
		Usage          []vigil.Usage `json:"usage"`
		EstimatedTotal *float64      `json:"estimatedTotal,omitempty"`
		Currency       string        `json:"currency,omitempty"`
	}
	if err := c.do(ctx, http.MethodGet, "/v1/usage?"+q.Encode(), nil, &out); err != nil {
		return e.fail(err)
	}
	if *cf.format == "json" {
		return e.printJSON(out)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MONTH\tACCOUNT\tTYPE\tSCANS\tREMATCHES\tESTIMATED COST")
	for _, u := range out.Usage {
		cost := "-"
		if u.EstimatedCost != nil {
			cost = fmt.Sprintf("%.2f %s", *u.EstimatedCost, u.Currency)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\n", u.Month, u.Account, u.ResourceType, u.Scans, u.Rematches, cost)
	}
	if out.EstimatedTotal != nil {
		fmt.Fprintf(tw, "total\t\t\t\t\t%.2f %s\n", *out.EstimatedTotal, out.Currency)
	}
	tw.Flush()
	return exitOK
}

func (e *env) registry(ctx context.Context, args []string) int {
	const use = "vigil registry add URL [--username U --password-env VAR] [--include GLOB]… [--exclude GLOB]… [--poll-interval D] | list | remove ID | poll ID  [--server URL] [--key KEY]"
	if len(args) == 0 || !slices.Contains([]string{"add", "list", "remove", "poll"}, args[0]) {
		fmt.Fprintf(e.stderr, "Usage: %s\n", use)
		return exitUsage
	}
	fs := newFlagSet(e, "registry "+args[0], use)
	cf := registerClient(fs)
	username := fs.String("username", "", "add: registry user")
	passwordEnv := fs.String("password-env", "", "add: name of the environment variable that holds the password (kept off the command line)")
	poll := fs.Duration("poll-interval", 0, "add: poll the registry this often (0: rely on its notifications)")
	account := fs.String("account", "", "add: file its images under this member account")
	var include, exclude multiFlag
	fs.Var(&include, "include", "add: repositories to watch, a glob such as team/* (repeatable; default all)")
	fs.Var(&exclude, "exclude", "add: repositories to leave out, a glob (repeatable)")
	pos, err := parseFlags(fs, args[1:])
	if err != nil {
		return exitUsage
	}
	if err := oneOf(*cf.format, "table", "json"); err != nil {
		return e.fail(err)
	}
	c, err := e.newClient(*cf.server, *cf.key)
	if err != nil {
		return e.fail(err)
	}
	switch args[0] {
	case "add":
		if len(pos) != 1 {
			fs.Usage()
			return exitUsage
		}
		req := httpapi.RegistryRequest{URL: pos[0], Username: *username, Include: include, Exclude: exclude, Account: *account}
		if *poll > 0 {
			req.PollInterval = poll.String()
		}
		if *passwordEnv != "" {
			req.Password = e.getenv(*passwordEnv)
			if req.Password == "" {
				return e.fail(vigil.Errorf(vigil.EINVALID, "--password-env %s: the variable is empty or unset", *passwordEnv))
			}
		}
		var reg sqlstore.Registry
		if err := c.do(ctx, http.MethodPost, "/v1/registries", req, &reg); err != nil {
			return e.fail(err)
		}
		if *cf.format == "json" {
			return e.printJSON(reg)
		}
		fmt.Fprintf(e.stdout, "registry %s watched as %s\n", reg.URL, reg.ID)
		fmt.Fprintf(e.stdout, "notifications: POST %s/v1/registries/%s/events with the header\n  Authorization: Bearer %s\n(the secret is shown once)\n", c.base, reg.ID, reg.WebhookSecret)
		return exitOK
	case "list":
		var out struct {
			Registries []sqlstore.Registry `json:"registries"`
		}
		if err := c.do(ctx, http.MethodGet, "/v1/registries", nil, &out); err != nil {
			return e.fail(err)
		}
		if *cf.format == "json" {
			return e.printJSON(out)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tURL\tACCOUNT\tPOLL\tLAST POLLED\tLAST ERROR")
		for _, r := range out.Registries {
			polled := "-"
			if !r.LastPolled.IsZero() {
				polled = r.LastPolled.Format(time.RFC3339)
			}
			every := "webhook only"
			if r.PollSeconds > 0 {
				every = (time.Duration(r.PollSeconds) * time.Second).String()
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.URL, r.Account, every, polled, dash(oneLine(r.LastError, 80)))
		}
		tw.Flush()
		return exitOK
	case "remove", "poll":
		if len(pos) != 1 {
			fs.Usage()
			return exitUsage
		}
		if args[0] == "remove" {
			if err := c.do(ctx, http.MethodDelete, "/v1/registries/"+url.PathEscape(pos[0]), nil, nil); err != nil {
				return e.fail(err)
			}
			fmt.Fprintf(e.stdout, "registry %s removed\n", pos[0])
			return exitOK
		}
		var out map[string]any
		if err := c.do(ctx, http.MethodPost, "/v1/registries/"+url.PathEscape(pos[0])+"/poll", nil, &out); err != nil {
			return e.fail(err)
		}
		return e.printJSON(out)
	}
	return exitUsage
}

// function puts a function package on a server: its zip and layers are
// streamed as multipart/form-data, never held in memory.
func (e *env) function(ctx context.Context, args []string) int {
	const use = "vigil function put ZIP --name NAME [--layer ZIP]… [--runtime RUNTIME] [--tag k=v]… [--account NAME] [--wait D] [--server URL] [--key KEY]"
	if len(args) == 0 || args[0] != "put" {
		fmt.Fprintf(e.stderr, "Usage: %s\n", use)
		return exitUsage
	}
	fs := newFlagSet(e, "function put", use)
	cf := registerClient(fs)
	name := fs.String("name", "", "the function's name (a new version replaces the old one)")
	runtime := fs.String("runtime", "", "runtime (nodejs20.x, python3.12, …); inferred when empty")
	account := fs.String("account", "", "file it under this member account")
	wait := fs.Duration("wait", 0, "wait this long for the scan to end, then print it")
	var layers, tags multiFlag
	fs.Var(&layers, "layer", "a layer zip, in order (repeatable)")
	fs.Var(&tags, "tag", "a tag, key=value (repeatable)")
	pos, err := parseFlags(fs, args[1:])
	if err != nil || len(pos) != 1 {
		fs.Usage()
		return exitUsage
	}
	if *name == "" {
		return e.fail(vigil.Errorf(vigil.EINVALID, "--name: required"))
	}
	files := append([]string{pos[0]}, layers...)
	for _, f := range files {
		if st, err := os.Stat(f); err != nil || !st.Mode().IsRegular() {
			return e.fail(vigil.Errorf(vigil.EINVALID, "%s: not a readable file", f))
		}
	}
	c, err := e.newClient(*cf.server, *cf.key)
	if err != nil {
		return e.fail(err)
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		err := func() error {
			fields := [][2]string{{"name", *name}, {"runtime", *runtime}, {"account", *account}}
			for _, t := range tags {
				fields = append(fields, [2]string{"tag", t})
			}
			for _, f := range fields {
				if f[1] == "" {
					continue
				}
				if err := mw.WriteField(f[0], f[1]); err != nil {
					return err
				}
			}
			for i, path := range files {
				part := "layer"
				if i == 0 {
					part = "package"
				}
				w, err := mw.CreateFormFile(part, filepath.Base(path))
				if err != nil {
					return err
				}
				f, err := os.Open(path)
				if err != nil {
					return err
				}
				_, err = io.Copy(w, f)
				f.Close()
				if err != nil {
					return err
				}
			}
			return mw.Close()
		}()
		pw.CloseWithError(err)
	}()
	var sc sqlstore.Scan
	if err := c.send(ctx, http.MethodPost, "/v1/functions", mw.FormDataContentType(), pr, &sc); err != nil {
		return e.fail(err)
	}
	if *wait > 0 {
		done, err := c.waitScan(ctx, sc.ID, *wait)
		if err != nil {
			return e.fail(err)
		}
		sc = *done
	}
	e.printJSON(sc)
	if sc.Status == sqlstore.ScanFailed {
		return exitFail
	}
	return exitOK
}
