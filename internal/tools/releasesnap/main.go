// Command releasesnap freezes a pgqgo schema release: it writes the complete
// install script of a schema source tree to schema/releases/<version>.sql.
//
//	git worktree add /tmp/r020 <commit of release 0.2.0>
//	go run ./internal/tools/releasesnap -src /tmp/r020/schema -release 0.2.0
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/pgqgo/pgqgo/schema"
)

func main() {
	src := flag.String("src", "schema", "directory holding the release's sql/ tree")
	release := flag.String("release", schema.Release, "release number")
	out := flag.String("out", "", "output file (default schema/releases/<release>.sql)")
	flag.Parse()
	if *out == "" {
		*out = filepath.Join("schema", "releases", *release+".sql")
	}
	script, err := schema.Script(os.DirFS(*src), *release)
	if err == nil {
		err = os.WriteFile(*out, []byte(script), 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "releasesnap:", err)
		os.Exit(1)
	}
	fmt.Println("wrote", *out)
}
