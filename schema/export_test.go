package schema

import (
	"io/fs"
	"path"
	"strings"
)

// LondisteWIP is the londiste schema as far as it is written (issue 17):
// its tables and the functions done so far, for the differential tests.
// It is not installable through InstallComponent until every function of
// londiste 3.8 is there.
func LondisteWIP() string {
	var b strings.Builder
	b.WriteString(mustRead("sql/londiste/structure.sql"))
	entries, err := fs.ReadDir(files, "sql/londiste/functions")
	if err != nil {
		panic(err)
	}
	for _, e := range entries {
		b.WriteString("\n")
		b.WriteString(mustRead(path.Join("sql/londiste/functions", e.Name())))
	}
	return b.String()
}
