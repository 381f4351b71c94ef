package vigil

import "time"

// Key roles.
const (
	RoleAdmin    = "admin"
	RoleAnalyst  = "analyst"
	RoleReadOnly = "read-only"
	// RoleAgent may only submit inventories.
	RoleAgent = "agent"
)

// Roles lists the roles a key can have.
var Roles = []string{RoleAdmin, RoleAnalyst, RoleReadOnly, RoleAgent}

// Account owns resources and their findings. An account with members is
// an organisation's administrator: it sees and manages its members'.
type Account struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	// Admin is the name of the organisation administrator this account is a
	// member of, if any.
	Admin   string    `json:"admin,omitempty"`
	Created time.Time `json:"createdAt"`
}

// APIKey is a key as stored: its secret is shown once, at creation, and
// kept only as a hash.
type APIKey struct {
	ID      int64      `json:"id"`
	Account string     `json:"account"`
	Role    string     `json:"role"`
	Prefix  string     `json:"prefix"`
	Created time.Time  `json:"createdAt"`
	Expires *time.Time `json:"expiresAt,omitempty"`
}

// Principal is who a request acts as: the key's account and role, and the
// accounts it may see (its own, and its members' for an administrator).
type Principal struct {
	AccountID int64
	Account   string
	Role      string
	Visible   []int64
}

// Resource types.
const (
	ResourceHost     = "host"
	ResourceImage    = "image"
	ResourceFunction = "function"
)

// ResourceTypes are the resource types, in the order they are listed.
var ResourceTypes = []string{ResourceHost, ResourceImage, ResourceFunction}

// Resource is a host, image or function whose findings Vigil keeps.
type Resource struct {
	ID              string            `json:"id"`
	Account         string            `json:"account"`
	Type            string            `json:"type"`
	Name            string            `json:"name"`
	Tags            map[string]string `json:"tags"`
	Details         ResourceDetails   `json:"details"`
	FirstSeen       time.Time         `json:"firstSeenAt"`
	LastScanned     time.Time         `json:"lastScannedAt"`
	InventoryDigest string            `json:"inventoryDigest"`
}

// ResourceDetails are what the resource's type says of it.
type ResourceDetails struct {
	OS       *OSInfo       `json:"os,omitempty"`
	Image    *ImageInfo    `json:"image,omitempty"`
	Function *FunctionInfo `json:"function,omitempty"`
}
