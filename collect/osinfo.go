package collect

import (
	"bufio"
	"io"
	"strings"

	"github.com/vigil-project/vigil"
)

// parseOSRelease reads an os-release file (os-release(5)): KEY=value lines,
// values optionally quoted, comments and blank lines ignored.
func parseOSRelease(r io.Reader) map[string]string {
	m := map[string]string{}
	sc := bufio.NewScanner(io.LimitReader(r, 64<<10))
	sc.Buffer(make([]byte, 4096), 64<<10)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
			v = v[1 : len(v)-1]
			v = strings.NewReplacer(`\"`, `"`, `\\`, `\`, `\$`, `$`, "\\`", "`").Replace(v)
		}
		m[k] = v
	}
	return m
}

// osInfo maps os-release fields to the OS and its OSV ecosystem.
func osInfo(m map[string]string) *vigil.OSInfo {
	id := strings.ToLower(m["ID"])
	if id == "" {
		return nil
	}
	o := &vigil.OSInfo{
		ID:         id,
		VersionID:  m["VERSION_ID"],
		Codename:   m["VERSION_CODENAME"],
		PrettyName: m["PRETTY_NAME"],
	}
	o.Ecosystem = osEcosystem(o, m)
	return o
}

// osEcosystem is the OSV ecosystem of an OS's packages, or "" where OSV
// has none.
func osEcosystem(o *vigil.OSInfo, m map[string]string) string {
	v := o.VersionID
	major, _, _ := strings.Cut(v, ".")
	switch o.ID {
	case "debian":
		if v == "" {
			// testing and unstable have no VERSION_ID.
			if o.Codename != "" || strings.Contains(m["PRETTY_NAME"], "sid") {
				return "Debian:unstable"
			}
			return ""
		}
		return "Debian:" + major
	case "ubuntu":
		if v == "" {
			return ""
		}
		// OSV names LTS releases Ubuntu:22.04:LTS.
		if strings.Contains(m["VERSION"], "LTS") {
			return "Ubuntu:" + v + ":LTS"
		}
		return "Ubuntu:" + v
	case "alpine":
		parts := strings.Split(v, ".")
		if len(parts) < 2 {
			return ""
		}
		return "Alpine:v" + parts[0] + "." + parts[1]
	case "wolfi":
		return "Wolfi"
	case "chainguard":
		return "Chainguard"
	case "rocky":
		return "Rocky Linux:" + major
	case "almalinux":
		return "AlmaLinux:" + major
	case "rhel":
		return "Red Hat:enterprise_linux:" + major
	case "opensuse-leap":
		return "openSUSE:Leap " + v
	case "opensuse-tumbleweed":
		return "openSUSE:Tumbleweed"
	case "sles":
		return "SUSE:Linux Enterprise Server " + strings.ReplaceAll(v, ".", " SP")
	case "mageia":
		return "Mageia:" + v
	case "photon":
		return "Photon OS:" + v
	}
	// Amazon Linux, CentOS, Fedora and others publish no OSV data.
	return ""
}
