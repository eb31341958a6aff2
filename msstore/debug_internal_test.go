package msstore

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func TestDebugDump(t *testing.T) {
	dir := os.Getenv("MSDUMP")
	if dir == "" {
		t.Skip()
	}
	id, _ := strconv.ParseUint(os.Getenv("MSID"), 10, 64)
	names, _ := filepath.Glob(filepath.Join(dir, "vol-*.msv"))
	for _, n := range names {
		f, _ := os.Open(n)
		fi, _ := f.Stat()
		sc := &scanner{f: f, size: fi.Size()}
		cnt := 0
		end := sc.scan(volHeaderLen, func(h *recHeader, off int64) {
			cnt++
			if h.id == id {
				fmt.Printf("%s off %d kind %d lsn %d refs %d size %d\n", filepath.Base(n), off, h.kind, h.lsn, h.refs, h.size())
			}
		}, func(d Damage) { fmt.Printf("%s damage %+v\n", n, d) })
		fmt.Printf("%s: %d records end %d size %d\n", filepath.Base(n), cnt, end, fi.Size())
	}
	ck, err := readCheckpoint(filepath.Join(dir, ckptName))
	if err == nil {
		fmt.Printf("ckpt lsn %d nextVol %d vols %v\n", ck.lsn, ck.nextVol, ck.vols)
		for _, e := range ck.entries {
			if e.id == id {
				fmt.Printf("ckpt entry %+v\n", e)
			}
		}
		fmt.Println("stale", ck.stale[id])
	}
}
