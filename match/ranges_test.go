package match

import (
	"testing"

	"github.com/vigil-project/vigil"
)

func ev(pairs ...string) []vigil.Event {
	var out []vigil.Event
	for i := 0; i+1 < len(pairs); i += 2 {
		switch pairs[i] {
		case "i":
			out = append(out, vigil.Event{Introduced: pairs[i+1]})
		case "f":
			out = append(out, vigil.Event{Fixed: pairs[i+1]})
		case "l":
			out = append(out, vigil.Event{LastAffected: pairs[i+1]})
		}
	}
	return out
}

// Each ecosystem's own version order decides, with OSV's event semantics.
func TestAffects(t *testing.T) {
	for _, c := range []struct {
		name, eco, version string
		typ                string
		events             []vigil.Event
		versions           []string
		want               bool
		fixed              string
	}{
		// dpkg: epochs, tilde, revisions.
		{"dpkg below fix", "Debian:12", "3.0.11-1~deb12u2", "ECOSYSTEM", ev("i", "0", "f", "3.0.15-1~deb12u1"), nil, true, "3.0.15-1~deb12u1"},
		{"dpkg at fix", "Debian:12", "3.0.15-1~deb12u1", "ECOSYSTEM", ev("i", "0", "f", "3.0.15-1~deb12u1"), nil, false, ""},
		{"dpkg tilde sorts before", "Debian:12", "3.0.15-1~deb12u1~rc1", "ECOSYSTEM", ev("i", "0", "f", "3.0.15-1~deb12u1"), nil, true, "3.0.15-1~deb12u1"},
		{"dpkg epoch beats upstream", "Debian:12", "1:1.2.13.dfsg-1", "ECOSYSTEM", ev("i", "0", "f", "1.3.0-1"), nil, false, ""},
		{"dpkg no epoch below epoch fix", "Debian:12", "2.0-1", "ECOSYSTEM", ev("i", "0", "f", "1:1.0-1"), nil, true, "1:1.0-1"},
		{"dpkg binNMU source", "Debian:12", "1.10.0-3", "ECOSYSTEM", ev("i", "0", "f", "1.10.0-3+deb12u1"), nil, true, "1.10.0-3+deb12u1"},
		{"dpkg unfixed", "Debian:12", "5.36.0-7", "ECOSYSTEM", ev("i", "0"), nil, true, ""},
		// npm SemVer with pre-releases.
		{"npm below", "npm", "4.17.15", "ECOSYSTEM", ev("i", "0", "f", "4.17.20"), nil, true, "4.17.20"},
		{"npm prerelease of fix is below it", "npm", "4.17.20-beta.1", "ECOSYSTEM", ev("i", "0", "f", "4.17.20"), nil, true, "4.17.20"},
		{"npm introduced after 0", "npm", "1.9.9", "ECOSYSTEM", ev("i", "2.0.0", "f", "2.2.2"), nil, false, ""},
		{"npm in second range", "npm", "2.1.0", "ECOSYSTEM", ev("i", "0", "l", "1.0.1", "i", "2.0.0", "f", "2.2.2"), nil, true, "2.2.2"},
		{"npm last_affected inclusive", "npm", "1.0.1", "ECOSYSTEM", ev("i", "0", "l", "1.0.1"), nil, true, ""},
		{"npm past last_affected", "npm", "1.0.2", "ECOSYSTEM", ev("i", "0", "l", "1.0.1"), nil, false, ""},
		{"npm several fixes: nearest above", "npm", "2.5.0", "ECOSYSTEM", ev("i", "0", "f", "1.2.0", "i", "2.0.0", "f", "2.6.0", "i", "3.0.0", "f", "3.1.0"), nil, true, "2.6.0"},
		{"events out of order", "npm", "2.5.0", "ECOSYSTEM", ev("i", "2.0.0", "f", "2.6.0", "i", "0", "f", "1.2.0"), nil, true, "2.6.0"},
		// PEP 440.
		{"pypi local version", "PyPI", "2.28.1+deb12u1", "ECOSYSTEM", ev("i", "0", "f", "2.31.0"), nil, true, "2.31.0"},
		{"pypi pre-release below", "PyPI", "2.31.0rc1", "ECOSYSTEM", ev("i", "0", "f", "2.31.0"), nil, true, "2.31.0"},
		{"pypi post-release above", "PyPI", "2.31.0.post1", "ECOSYSTEM", ev("i", "0", "f", "2.31.0"), nil, false, ""},
		{"pypi normalised equality", "PyPI", "1.0", "ECOSYSTEM", nil, []string{"1.0.0"}, true, ""},
		// Maven qualifiers.
		{"maven beta below release", "Maven", "2.0-beta9", "ECOSYSTEM", ev("i", "2.0-beta9", "f", "2.3.1"), nil, true, "2.3.1"},
		{"maven rc below fix", "Maven", "2.15.0-rc1", "ECOSYSTEM", ev("i", "2.13.0", "f", "2.15.0"), nil, true, "2.15.0"},
		{"maven fixed", "Maven", "2.17.1", "ECOSYSTEM", ev("i", "2.13.0", "f", "2.15.0"), nil, false, ""},
		// Go pseudo-versions and stdlib.
		{"go pseudo-version below", "Go", "0.0.0-20200226121028-0de0cce0169b", "SEMVER", ev("i", "0", "f", "0.0.0-20210428140749-89ef3d95e781"), nil, true, "0.0.0-20210428140749-89ef3d95e781"},
		{"go pseudo-version above", "Go", "0.23.0", "SEMVER", ev("i", "0", "f", "0.0.0-20210428140749-89ef3d95e781"), nil, false, ""},
		{"go stdlib", "Go", "1.19.0", "SEMVER", ev("i", "0", "f", "1.18.6", "i", "1.19.0-0", "f", "1.19.1"), nil, true, "1.19.1"},
		{"go +incompatible", "Go", "3.2.0+incompatible", "SEMVER", ev("i", "0"), nil, true, ""},
		// Others.
		{"crates semver", "crates.io", "0.10.0", "SEMVER", ev("i", "0.0.0-0", "f", "0.7.1", "i", "0.10.0", "f", "0.10.0"), nil, false, ""},
		{"rubygems", "RubyGems", "6.1.7.2", "ECOSYSTEM", ev("i", "6.1.0", "f", "6.1.7.3"), nil, true, "6.1.7.3"},
		{"nuget", "NuGet", "4.7.1", "ECOSYSTEM", ev("i", "0", "f", "4.7.2"), nil, true, "4.7.2"},
		{"packagist v prefix", "Packagist", "v2.4.0", "ECOSYSTEM", ev("i", "0", "f", "2.4.1"), nil, true, "2.4.1"},
		{"alpine", "Alpine:v3.20", "3.3.1-r0", "ECOSYSTEM", ev("i", "0", "f", "3.3.2-r1"), nil, true, "3.3.2-r1"},
		{"listed version only", "crates.io", "0.3.1", "SEMVER", nil, []string{"0.3.0", "0.3.1"}, true, ""},
		{"git ranges are not versions", "PyPI", "1.0", "GIT", ev("i", "0", "f", "abc123"), nil, false, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			iv, err := parseVersion(c.version, c.eco)
			if err != nil {
				t.Fatal(err)
			}
			a := vigil.Affected{Ecosystem: c.eco, Package: "p", Versions: c.versions}
			if c.events != nil {
				a.Ranges = []vigil.Range{{Type: c.typ, Events: c.events}}
			}
			m, ok := affects(iv, c.version, c.eco, a)
			if ok != c.want || m.fixed != c.fixed {
				t.Errorf("affects(%s %s) = %v fixed %q (%s); want %v fixed %q", c.eco, c.version, ok, m.fixed, m.text, c.want, c.fixed)
			}
		})
	}
}

func TestKernelSources(t *testing.T) {
	for name, want := range map[string]bool{
		"linux": true, "linux-signed-amd64": true, "linux-signed": true, "linux-aws": true, "linux-hwe-6.8": true,
		"linux-lts": true, "linux-virt": true, "linux-azure-6.5": true,
		"linux-pam": false, "linux-atm": false, "linux-base": false, "linuxdoc-tools": false, "util-linux": false, "linux-firmware": false,
	} {
		if got := kernelSource.MatchString(name); got != want {
			t.Errorf("kernel source %q = %v, want %v", name, got, want)
		}
	}
}
