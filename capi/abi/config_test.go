package abi

import (
	"testing"
)

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig([]byte(`{"path": "/dev/shm/x", "l1_bytes": 4096, "promote": "never", "demote": false, "allow_foreign_owner": true, "share_slot": 12884901893}`))
	if err != nil || c.Path != "/dev/shm/x" || c.L1Bytes != 4096 || c.Promote.String() != "never" || !c.NoDemote || !c.AllowForeignOwner ||
		c.ShareSlot != 3<<32|5 {
		t.Fatalf("%+v %v", c, err)
	}
	for _, bad := range []string{``, `null`, `[]`, `"x"`, `{}`, `{"path": ""}`, `{"path": "x", "l1_bytes": 1.5}`,
		`{"path": "x", "l1_bytes": -1}`, `{"path": "x", "promote": "x"}`, `{"path": "x"} x`, `{"path": "x", "l1": 1}`,
		`{"path": "x", "share_slot": -1}`, `{"path": "x", "share_slot": "1"}`} {
		if _, err := ParseConfig([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

// FuzzParseConfig: the parser of cachee_open's untrusted document never
// panics, and what it accepts has a path and sane values.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{`{"path":"p"}`, `{"path":"p","l1_bytes":1,"promote":"always","demote":true}`,
		`{"path":"p","allow_foreign_owner":false}`, `{`, `[1,2]`, `{"path":"p","l1_bytes":1e3}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		c, err := ParseConfig(doc)
		if err != nil {
			return
		}
		if c.Path == "" || c.L1Bytes < 0 {
			t.Fatalf("accepted %q as %+v", doc, c)
		}
	})
}
