// Package score computes CVSS base scores and severity ratings from CVSS
// vectors (versions 2.0, 3.0, 3.1 and 4.0), using github.com/pandatix/go-cvss.
//
// Scores are always computed from the vector: a score that a feed states next
// to its vector is never trusted.
package score

import (
	"fmt"
	"math"
	"strings"

	gocvss20 "github.com/pandatix/go-cvss/20"
	gocvss30 "github.com/pandatix/go-cvss/30"
	gocvss31 "github.com/pandatix/go-cvss/31"
	gocvss40 "github.com/pandatix/go-cvss/40"
	"github.com/vigil-project/vigil"
)

// OSV severity types that Parse accepts.
const (
	TypeV2 = "CVSS_V2"
	TypeV3 = "CVSS_V3"
	TypeV4 = "CVSS_V4"
)

// maxVectorLen bounds the vectors Parse looks at. The longest valid vector
// (CVSS v4.0 with every optional metric) is well under 300 bytes.
const maxVectorLen = 1024

// Parse parses a CVSS vector and computes its base score and severity.
//
// typ is the OSV severity type (CVSS_V2, CVSS_V3 or CVSS_V4), or "" to infer
// the version from the vector: "CVSS:3.0/", "CVSS:3.1/" and "CVSS:4.0/"
// prefixes name their version, and a vector without a prefix is CVSS v2.0.
// A v2 vector may be wrapped in parentheses, as in "(AV:N/AC:L/...)"; the
// parentheses are dropped from the returned Vector.
//
// The returned CVSS has Version, Vector (trimmed of surrounding space),
// BaseScore and Severity set; Source is left empty. Parse returns an error if
// the vector does not parse, or if typ is unknown or disagrees with the
// vector's version.
func Parse(typ, vector string) (c vigil.CVSS, err error) {
	// The vector is untrusted input handed to a third-party parser: turn any
	// panic in it into an error.
	defer func() {
		if r := recover(); r != nil {
			c, err = vigil.CVSS{}, fmt.Errorf("score: vector %q: internal error: %v", vector, r)
		}
	}()

	v := strings.TrimSpace(vector)
	if v == "" {
		return vigil.CVSS{}, fmt.Errorf("score: empty vector")
	}
	if len(v) > maxVectorLen {
		return vigil.CVSS{}, fmt.Errorf("score: vector too long (%d bytes)", len(v))
	}

	var version string
	switch {
	case strings.HasPrefix(v, "CVSS:3.0/"):
		version = "3.0"
	case strings.HasPrefix(v, "CVSS:3.1/"):
		version = "3.1"
	case strings.HasPrefix(v, "CVSS:4.0/"):
		version = "4.0"
	case strings.HasPrefix(v, "CVSS:"):
		return vigil.CVSS{}, fmt.Errorf("score: vector %q: unsupported CVSS version", v)
	default:
		version = "2.0"
		if strings.HasPrefix(v, "(") && strings.HasSuffix(v, ")") {
			v = strings.TrimSpace(v[1 : len(v)-1])
		}
	}

	switch typ {
	case "":
	case TypeV2:
		if version != "2.0" {
			return vigil.CVSS{}, fmt.Errorf("score: type %s but vector %q is CVSS %s", typ, v, version)
		}
	case TypeV3:
		if version != "3.0" && version != "3.1" {
			return vigil.CVSS{}, fmt.Errorf("score: type %s but vector %q is CVSS %s", typ, v, version)
		}
	case TypeV4:
		if version != "4.0" {
			return vigil.CVSS{}, fmt.Errorf("score: type %s but vector %q is CVSS %s", typ, v, version)
		}
	default:
		return vigil.CVSS{}, fmt.Errorf("score: unsupported severity type %q", typ)
	}

	var base float64
	switch version {
	case "2.0":
		m, err := gocvss20.ParseVector(v)
		if err != nil {
			return vigil.CVSS{}, fmt.Errorf("score: CVSS 2.0 vector %q: %w", v, err)
		}
		base = m.BaseScore()
	case "3.0":
		m, err := gocvss30.ParseVector(v)
		if err != nil {
			return vigil.CVSS{}, fmt.Errorf("score: CVSS 3.0 vector %q: %w", v, err)
		}
		base = m.BaseScore()
	case "3.1":
		m, err := gocvss31.ParseVector(v)
		if err != nil {
			return vigil.CVSS{}, fmt.Errorf("score: CVSS 3.1 vector %q: %w", v, err)
		}
		base = m.BaseScore()
	case "4.0":
		m, err := gocvss40.ParseVector(v)
		if err != nil {
			return vigil.CVSS{}, fmt.Errorf("score: CVSS 4.0 vector %q: %w", v, err)
		}
		base = m.Score()
	}
	if math.IsNaN(base) || base < 0 || base > 10 {
		return vigil.CVSS{}, fmt.Errorf("score: vector %q: computed score %v out of range", v, base)
	}
	return vigil.CVSS{
		Version:   version,
		Vector:    v,
		BaseScore: base,
		Severity:  Rating(version, base),
	}, nil
}

// Rating returns the qualitative severity of a base score for a CVSS version:
// NONE (0.0), LOW (0.1-3.9), MEDIUM (4.0-6.9), HIGH (7.0-8.9) or CRITICAL
// (9.0-10.0), the bands of CVSS v3.x and v4.0. CVSS v2.0 ("2.0") has only
// LOW (below 4.0), MEDIUM (below 7.0) and HIGH. Unknown versions use the v3
// bands. Rating returns "" for a score outside [0, 10] or NaN.
func Rating(version string, score float64) string {
	if math.IsNaN(score) || score < 0 || score > 10 {
		return ""
	}
	if version == "2.0" {
		switch {
		case score < 4:
			return "LOW"
		case score < 7:
			return "MEDIUM"
		default:
			return "HIGH"
		}
	}
	switch {
	case score < 0.1:
		return "NONE"
	case score < 4:
		return "LOW"
	case score < 7:
		return "MEDIUM"
	case score < 9:
		return "HIGH"
	default:
		return "CRITICAL"
	}
}
