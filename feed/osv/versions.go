package osv

import (
	"errors"
	"regexp"
	"strings"
)

// The version orders themselves come from osv-scalibr's semantic package,
// whose parsers are lenient: they order any string somehow. Ranges whose
// versions are not versions of their ecosystem at all would then match
// arbitrary packages, so each ecosystem's syntax is checked here first.
var (
	// dpkg: [epoch:]upstream[-revision] (deb-version(7)).
	dpkgRe = regexp.MustCompile(`^(?:[0-9]+:)?[0-9A-Za-z][0-9A-Za-z.+~:-]*$`)
	// Semantic Versioning 2.0.0, the grammar of SEMVER ranges.
	semverRe = regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)` +
		`(?:-((?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*))*))?` +
		`(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)
	// PEP 440, the packaging project's VERSION_PATTERN.
	pep440Re = regexp.MustCompile(`^(?i)v?(?:[0-9]+!)?[0-9]+(?:\.[0-9]+)*` +
		`(?:[-_.]?(?:a|b|c|rc|alpha|beta|pre|preview)[-_.]?[0-9]*)?` +
		`(?:-[0-9]+|[-_.]?(?:post|rev|r)[-_.]?[0-9]*)?` +
		`(?:[-_.]?dev[-_.]?[0-9]*)?` +
		`(?:\+[a-z0-9]+(?:[-_.][a-z0-9]+)*)?$`)
	// apk: digits separated by dots, a letter, suffixes, a revision.
	apkRe = regexp.MustCompile(`^[0-9]+(?:\.[0-9]+)*[a-z]?(?:_(?:alpha|beta|pre|rc|cvs|svn|git|hg|p)[0-9]*)*(?:~[0-9a-f]+)?(?:-r[0-9]+)?$`)
	// Everything else: a printable token with a digit, no wildcard or list.
	tokenRe = regexp.MustCompile(`^[^\s*,]*[0-9][^\s*,]*$`)
)

// validVersion checks that v is a version in the syntax of the range type
// and ecosystem.
func validVersion(rangeType, eco, v string) error {
	if len(v) > 256 {
		return errors.New("version longer than 256 bytes")
	}
	base, _, _ := strings.Cut(eco, ":")
	var re *regexp.Regexp
	switch {
	case rangeType == "SEMVER":
		re = semverRe
	case base == "Debian" || base == "Ubuntu":
		re = dpkgRe
	case base == "PyPI":
		re = pep440Re
	case base == "Alpine" || base == "Wolfi" || base == "Chainguard" || base == "Alpaquita" || base == "MinimOS" || base == "BellSoft Hardened Containers":
		re = apkRe
	default:
		re = tokenRe
	}
	if !re.MatchString(v) || !printable(v) {
		return errors.New("not a valid version for " + strings.ToLower(rangeType) + " range in " + eco)
	}
	return nil
}

func printable(s string) bool {
	for _, c := range s {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}
