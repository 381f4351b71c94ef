package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/vigil-project/vigil"
	"github.com/vigil-project/vigil/collect"
	"github.com/vigil-project/vigil/report"
	"github.com/vigil-project/vigil/source"
)

// targetFlags are the flags that say how to read a target.
type targetFlags struct {
	typ, runtime string
	layers       multiFlag
	insecure     bool
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func (t *targetFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&t.typ, "type", "", "force the target type: "+strings.Join(source.Types, ", "))
	fs.StringVar(&t.runtime, "runtime", "", "a function's runtime (nodejs20.x, python3.12, java21, provided.al2023); inferred when empty")
	fs.Var(&t.layers, "layer", "a function layer zip (repeatable)")
	fs.BoolVar(&t.insecure, "insecure-registry", false, "allow a plain-HTTP registry")
}

// collectTarget opens a target and reads its inventory, with a progress
// indicator on a terminal.
func (e *env) collectTarget(ctx context.Context, ref string, tf targetFlags) (*vigil.Inventory, error) {
	t, err := source.Open(ctx, ref, source.Options{Type: tf.typ, Runtime: tf.runtime, Layers: tf.layers, Insecure: tf.insecure})
	if err != nil {
		return nil, err
	}
	defer t.Close()
	opts := collect.Options{Version: version}
	if e.isTerminal() {
		opts.Progress = func(p collect.Progress) {
			fmt.Fprintf(e.stderr, "\r\033[Kreading layer %d/%d: %d files", min(p.Layer+1, p.Layers), p.Layers, p.Files)
		}
		defer fmt.Fprint(e.stderr, "\r\033[K")
	}
	return collect.Collect(ctx, t, opts)
}

func (e *env) sbom(ctx context.Context, args []string) int {
	fs := newFlagSet(e, "sbom", "vigil sbom TARGET [--format cyclonedx-json|spdx-json|json] [--output FILE] [--type TYPE] [--layer ZIP]…")
	format := fs.String("format", "cyclonedx-json", "output format: cyclonedx-json, spdx-json, or json (the Inventory)")
	output := fs.String("output", "", "write to FILE instead of stdout")
	var tf targetFlags
	tf.register(fs)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return exitUsage
	}
	if len(pos) != 1 {
		fs.Usage()
		return exitUsage
	}
	if err := oneOf(*format, "cyclonedx-json", "spdx-json", "json"); err != nil {
		return e.fail(err)
	}
	inv, err := e.collectTarget(ctx, pos[0], tf)
	if err != nil {
		return e.fail(err)
	}
	for _, w := range inv.Warnings {
		fmt.Fprintln(e.stderr, "warning:", w)
	}
	return e.writeOutput(*output, func(w io.Writer) error {
		switch *format {
		case "cyclonedx-json":
			return report.CycloneDX(w, inv)
		case "spdx-json":
			return report.SPDX(w, inv)
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(inv)
	})
}

// writeOutput writes to a file (whole or not at all) or stdout.
func (e *env) writeOutput(path string, write func(io.Writer) error) int {
	if path == "" {
		if err := write(e.stdout); err != nil {
			return e.fail(err)
		}
		return exitOK
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return e.fail(err)
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		tmp.Close()
		return e.fail(err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return e.fail(err)
	}
	if err := tmp.Close(); err != nil {
		return e.fail(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return e.fail(err)
	}
	return exitOK
}
