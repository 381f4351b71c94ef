// Command vigil keeps watch over hosts, container images and function
// packages for known vulnerabilities. See the README for the commands.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/vigil-project/vigil"
)

// Exit codes, a contract with scripts (docs/cli.md).
const (
	exitOK    = 0
	exitFail  = 1 // the command ran and failed, or found what --fail-on asks about
	exitUsage = 2 // bad usage or bad input
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	if p := os.Getenv("VIGIL_CPUPROFILE"); p != "" {
		// A debugging aid: where the time of one command goes.
		if f, err := os.Create(p); err == nil {
			pprof.StartCPUProfile(f)
			defer f.Close()
		}
	}
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	pprof.StopCPUProfile()
	stop()
	os.Exit(code)
}

type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

const usage = `Usage: vigil <command> [flags]

Commands:
  scan TARGET  find the known vulnerabilities of a root filesystem, image, function package, file or SBOM
  db update    build or update the vulnerability database from the feeds
  db status    describe the vulnerability database
  db show ID   show one vulnerability by any of its ids
  db mirror    copy the feeds into a directory, for air-gapped sites
  sbom TARGET  list what a root filesystem, image, function package, file or SBOM holds
  server       serve the HTTP API and run continuous scanning (workers in-process)
  worker       run only the jobs of continuous scanning, beside a server, on its store
  admin        create accounts and API keys, on the server's store
  findings     list, get and aggregate findings on a server
  resources    list, get, tag, rescan and delete resources on a server
  coverage     list what is under continuous scanning and why not (list, stats)
  usage        scans per account, resource type and month, with estimated cost
  registry     watch registries: add, list, remove, poll
  function     put a function package (zip, layers) on a server to scan
  version      print the version

Run 'vigil <command> -h' for a command's flags.
`

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return runWith(ctx, args, stdin, stdout, stderr, os.Getenv)
}

// runWith runs the CLI with the given environment lookup.
func runWith(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "db":
		return e.db(ctx, args[1:])
	case "sbom":
		return e.sbom(ctx, args[1:])
	case "scan":
		return e.scan(ctx, args[1:])
	case "server":
		return e.server(ctx, args[1:])
	case "worker":
		return e.worker(ctx, args[1:])
	case "coverage":
		return e.coverage(ctx, args[1:])
	case "usage":
		return e.usage(ctx, args[1:])
	case "registry":
		return e.registry(ctx, args[1:])
	case "function":
		return e.function(ctx, args[1:])
	case "admin":
		return e.admin(ctx, args[1:])
	case "findings":
		return e.findings(ctx, args[1:])
	case "resources":
		return e.resources(ctx, args[1:])
	case "version", "--version":
		fmt.Fprintln(stdout, "vigil", version)
		return exitOK
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "vigil: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}

// parseFlags parses flags that may come before, between or after the
// positional arguments, and returns the positional ones.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// fail prints an error and returns its exit code: usage for invalid input,
// failure otherwise.
// printJSON writes v to stdout as indented JSON.
func (e *env) printJSON(v any) int {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return e.fail(err)
	}
	return exitOK
}

func (e *env) fail(err error) int {
	fmt.Fprintln(e.stderr, "vigil:", err)
	var verr *vigil.Error
	if errors.As(err, &verr) && verr.Code == vigil.EINVALID {
		return exitUsage
	}
	return exitFail
}

// dbPath resolves the vulnerability database path: --db, then VIGIL_DB,
// then the user's cache directory.
func (e *env) dbPath(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if v := e.getenv("VIGIL_DB"); v != "" {
		return v, nil
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no --db given and no user cache directory: %w", err)
	}
	return filepath.Join(dir, "vigil", "vigil.db"), nil
}

func newFlagSet(e *env, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

func oneOf(v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return vigil.Errorf(vigil.EINVALID, "unknown format %q (want %s)", v, strings.Join(allowed, " or "))
}
