package main

import "os"

// pgEnvSet reports whether any libpq connection variable is set.
func pgEnvSet() bool {
	for _, v := range []string{"PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGSERVICE"} {
		if os.Getenv(v) != "" {
			return true
		}
	}
	return false
}
