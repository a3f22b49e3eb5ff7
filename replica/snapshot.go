package replica

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// snapshotSession connects to dsn and begins a read-only REPEATABLE READ
// transaction that sees exactly an exported snapshot (pg_export_snapshot):
// one of several sessions reading one view in parallel. Closing the
// connection ends the transaction.
func snapshotSession(ctx context.Context, dsn, exported string) (*pgx.Conn, pgx.Tx, error) {
	c, err := connect(ctx, dsn)
	if err != nil {
		return nil, nil, err
	}
	tx, err := c.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err == nil {
		_, err = tx.Exec(ctx, "set transaction snapshot "+quoteLiteral(exported))
		if err != nil {
			err = fmt.Errorf("import the snapshot: %w", err)
		}
	}
	if err != nil {
		c.Close(context.Background())
		return nil, nil, err
	}
	return c, tx, nil
}

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
