package replica

import (
	"fmt"
	"strconv"
	"strings"
)

// snapshot is a txid_snapshot (xmin:xmax:xip,...): the copy's view of the
// provider. An event whose transaction it sees is already in the copied
// rows.
type snapshot struct {
	xmin, xmax int64
	xip        map[int64]bool
}

func parseSnapshot(s string) (*snapshot, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return nil, fmt.Errorf("snapshot %q: want xmin:xmax:xip", s)
	}
	var sn snapshot
	var err error
	if sn.xmin, err = strconv.ParseInt(parts[0], 10, 64); err != nil {
		return nil, fmt.Errorf("snapshot %q: %w", s, err)
	}
	if sn.xmax, err = strconv.ParseInt(parts[1], 10, 64); err != nil {
		return nil, fmt.Errorf("snapshot %q: %w", s, err)
	}
	if parts[2] != "" {
		sn.xip = map[int64]bool{}
		for _, x := range strings.Split(parts[2], ",") {
			v, err := strconv.ParseInt(x, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("snapshot %q: %w", s, err)
			}
			sn.xip[v] = true
		}
	}
	return &sn, nil
}

// sees reports whether a transaction had committed (or aborted) for the
// snapshot.
func (s *snapshot) sees(txid int64) bool {
	if txid < s.xmin {
		return true
	}
	if txid >= s.xmax {
		return false
	}
	return !s.xip[txid]
}
