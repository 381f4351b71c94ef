package match

import (
	"strings"

	"github.com/vigil-project/vigil"
)

// remediation names the concrete upgrade for a package in its ecosystem.
func remediation(p vigil.Package, fixed string) string {
	if fixed == "" {
		return "No fixed version is known yet."
	}
	eco, _, _ := strings.Cut(p.Ecosystem, ":")
	switch p.Type {
	case "deb":
		src := ""
		if p.SourceName != "" && p.SourceName != p.Name {
			src = " (source package " + p.SourceName + ")"
		}
		return "Upgrade " + p.Name + src + " to " + fixed + " or later: apt-get install --only-upgrade " + p.Name
	case "rpm":
		return "Upgrade " + p.Name + " to " + fixed + " or later: dnf upgrade " + p.Name
	case "apk":
		return "Upgrade " + p.Name + " to " + fixed + " or later: apk upgrade " + p.Name
	}
	switch eco {
	case "npm":
		return "Upgrade " + p.Name + " to " + fixed + " or later: npm install " + p.Name + "@" + fixed
	case "PyPI":
		return "Upgrade " + p.Name + " to " + fixed + " or later: pip install '" + p.Name + ">=" + fixed + "'"
	case "Go":
		if p.Name == "stdlib" {
			return "Rebuild the binary with Go " + fixed + " or later."
		}
		return "Upgrade " + p.Name + " to v" + fixed + " or later: go get " + p.Name + "@v" + fixed + " and rebuild."
	case "Maven":
		return "Upgrade " + p.Name + " to " + fixed + " or later in the build (pom.xml or build.gradle) and rebuild."
	case "crates.io":
		return "Upgrade " + p.Name + " to " + fixed + " or later: cargo update -p " + p.Name + " --precise " + fixed
	case "RubyGems":
		return "Upgrade " + p.Name + " to " + fixed + " or later: bundle update " + p.Name
	case "NuGet":
		return "Upgrade " + p.Name + " to " + fixed + " or later: dotnet add package " + p.Name + " --version " + fixed
	case "Packagist":
		return "Upgrade " + p.Name + " to " + fixed + " or later: composer require " + p.Name + ":^" + fixed
	}
	return "Upgrade " + p.Name + " to " + fixed + " or later."
}
