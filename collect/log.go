package collect

import (
	"sync"

	scalibrlog "github.com/google/osv-scalibr/log"
)

// The collectors' own log lines would interleave with Vigil's output; what
// matters reaches the inventory as warnings instead.
var quietOnce sync.Once

func quiet() { quietOnce.Do(func() { scalibrlog.SetLogger(silent{}) }) }

type silent struct{}

func (silent) Errorf(string, ...any) {}
func (silent) Error(...any)          {}
func (silent) Warnf(string, ...any)  {}
func (silent) Warn(...any)           {}
func (silent) Infof(string, ...any)  {}
func (silent) Info(...any)           {}
func (silent) Debugf(string, ...any) {}
func (silent) Debug(...any)          {}
