package abi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/cachee-dev/cachee/core/tiers"
)

// fileConfig is the JSON document of cachee_open (include/cachee.h).
type fileConfig struct {
	Path              *string `json:"path"`
	L1Bytes           *int64  `json:"l1_bytes"`
	Promote           *string `json:"promote"`
	Demote            *bool   `json:"demote"`
	AllowForeignOwner *bool   `json:"allow_foreign_owner"`
	ShareSlot         *uint64 `json:"share_slot"`
}

// ParseConfig parses the configuration document of cachee_open: a JSON
// object with the fields documented in include/cachee.h. Unknown fields,
// fields of the wrong type or range, trailing data and a missing path are
// errors.
func ParseConfig(doc []byte) (tiers.Config, error) {
	var fc fileConfig
	d := json.NewDecoder(bytes.NewReader(doc))
	d.DisallowUnknownFields()
	if err := d.Decode(&fc); err != nil {
		return tiers.Config{}, fmt.Errorf("config: %w", err)
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return tiers.Config{}, errors.New("config: data after the JSON object")
	}
	if len(bytes.TrimSpace(doc)) == 0 || bytes.TrimSpace(doc)[0] != '{' {
		return tiers.Config{}, errors.New("config: not a JSON object")
	}
	var cfg tiers.Config
	if fc.Path == nil || *fc.Path == "" {
		return cfg, errors.New(`config: "path" is required (a non-empty string)`)
	}
	cfg.Path = *fc.Path
	if fc.L1Bytes != nil {
		if *fc.L1Bytes < 0 {
			return cfg, errors.New(`config: "l1_bytes" must be >= 0`)
		}
		cfg.L1Bytes = *fc.L1Bytes
	}
	if fc.Promote != nil {
		switch *fc.Promote {
		case "tinylfu":
			cfg.Promote = tiers.PromoteTinyLFU
		case "always":
			cfg.Promote = tiers.PromoteAlways
		case "never":
			cfg.Promote = tiers.PromoteNever
		default:
			return cfg, fmt.Errorf(`config: "promote" must be "tinylfu", "always" or "never", not %q`, *fc.Promote)
		}
	}
	if fc.Demote != nil {
		cfg.NoDemote = !*fc.Demote
	}
	if fc.AllowForeignOwner != nil {
		cfg.AllowForeignOwner = *fc.AllowForeignOwner
	}
	if fc.ShareSlot != nil {
		cfg.ShareSlot = *fc.ShareSlot
	}
	return cfg, nil
}

func statsJSON(st tiers.Stats) ([]byte, error) { return json.Marshal(st) }
