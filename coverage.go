package vigil

import "time"

// Scan statuses of a resource's coverage: ACTIVE resources are under
// continuous scanning; INACTIVE ones are not, for a reason.
const (
	ScanActive   = "ACTIVE"
	ScanInactive = "INACTIVE"
)

// Reasons a resource is not (or not yet) under continuous scanning, as
// Amazon Inspector names them.
const (
	ReasonPendingInitialScan   = "PENDING_INITIAL_SCAN"
	ReasonExcludedByTag        = "EXCLUDED_BY_TAG"
	ReasonUnsupportedOS        = "UNSUPPORTED_OS"
	ReasonUnsupportedMediaType = "UNSUPPORTED_MEDIA_TYPE"
	ReasonStaleInventory       = "STALE_INVENTORY"
	ReasonEligibilityExpired   = "SCAN_ELIGIBILITY_EXPIRED"
	ReasonScanFailed           = "SCAN_FAILED"
)

// CoverageReasons lists the reasons, in the order they are documented.
var CoverageReasons = []string{ReasonPendingInitialScan, ReasonExcludedByTag, ReasonUnsupportedOS,
	ReasonUnsupportedMediaType, ReasonStaleInventory, ReasonEligibilityExpired, ReasonScanFailed}

// Coverage is whether one resource is under continuous scanning.
type Coverage struct {
	ResourceID   string            `json:"resourceId"`
	Account      string            `json:"account"`
	ResourceType string            `json:"resourceType"`
	ResourceName string            `json:"resourceName"`
	Tags         map[string]string `json:"tags"`
	ScanStatus   string            `json:"scanStatus"`
	Reason       string            `json:"reason,omitempty"`
	// Message says more about the reason: a failed scan's error.
	Message string `json:"message,omitempty"`
	// LastScannedAt is when its inventory was last read; zero before the
	// first scan.
	LastScannedAt time.Time `json:"lastScannedAt,omitzero"`
	// LastMatchedAt is when its findings were last matched against the
	// vulnerability database, at MatchedRevision: a re-evaluation matches
	// again without reading the resource.
	LastMatchedAt   time.Time `json:"lastMatchedAt,omitzero"`
	MatchedRevision int64     `json:"matchedRevision"`
	// SourceRef is where a rescan reads it from (a registry reference),
	// when Vigil can.
	SourceRef string `json:"sourceRef,omitempty"`
}

// CoverageStat counts the resources of one account and type by status
// and reason.
type CoverageStat struct {
	Account      string         `json:"account"`
	ResourceType string         `json:"resourceType"`
	Total        int            `json:"total"`
	Active       int            `json:"active"`
	Inactive     int            `json:"inactive"`
	ByReason     map[string]int `json:"byReason"`
}

// CoveragePolicy says which resources continuous scanning leaves out.
type CoveragePolicy struct {
	// ExcludeTag is the tag key that excludes a resource (default
	// "vigil:exclude"), whatever its value.
	ExcludeTag string
	// StaleAfter is how long a host's inventory counts as current after
	// its last report (default 7 days).
	StaleAfter time.Duration
	// Eligibility is how long an image stays under continuous scanning
	// after it was pushed or last pulled (Inspector's ECR rescan
	// duration: 0 is the image's lifetime; else 14, 30, 90 or 180 days).
	Eligibility time.Duration
}

// DefaultExcludeTag is the default exclusion tag key.
const DefaultExcludeTag = "vigil:exclude"

// Usage counts one account's scans of one resource type in one month.
type Usage struct {
	Account      string `json:"account"`
	ResourceType string `json:"resourceType"`
	Month        string `json:"month"` // YYYY-MM
	// Scans read a resource and matched its inventory; Rematches matched
	// a stored inventory again after a database update.
	Scans     int64 `json:"scans"`
	Rematches int64 `json:"rematches"`
	// EstimatedCost is Scans and Rematches at the configured unit
	// prices; absent when no price is configured.
	EstimatedCost *float64 `json:"estimatedCost,omitempty"`
	Currency      string   `json:"currency,omitempty"`
}
