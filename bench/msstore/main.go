// Command msstore benchmarks the volume store of package msstore against a
// file-per-message baseline written the careful Maildir way (for each
// message: create a unique file in tmp/, write it, fsync it, rename it into
// new/, fsync new/).
//
// Every (store, size) phase runs in a child process, so that the peak RSS
// (VmHWM) it reports belongs to that phase alone. The program re-executes
// itself with the environment variable MSBENCH_CHILD=1 and hidden flags
// (-phase, -store, -size, ...); the child prints one JSON result line on
// stdout and the parent prints a table. The last line of stdout is
//
//	ratio_vs_file_per_message=<x>
//
// where x is the volume store's messages/s divided by the baseline's, for
// 4 KiB bodies.
//
// Usage:
//
//	go run ./bench/msstore            # full run, a few minutes
//	go run ./bench/msstore -quick     # smoke test
//	go run ./bench/msstore -dir /data -sizes 4k,64k -index 0 -keep
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// childEnv is the environment variable that makes the program (or the test
// binary, see main_test.go) run one phase as a child.
const childEnv = "MSBENCH_CHILD"

func main() {
	if os.Getenv(childEnv) == "1" {
		os.Exit(child(os.Args[1:], os.Stdout))
	}
	os.Exit(run(os.Args[1:], os.Stdout))
}

// options are the parent's flags.
type options struct {
	dir      string
	writers  int
	readers  int
	sizes    []int
	count4k  int
	count64k int
	count1m  int
	index    int
	readSize int
	keep     bool
	quick    bool
}

// countFor returns the number of messages of a write phase with bodies of
// size bytes: the count of the nearest standard size.
func (o *options) countFor(size int) int {
	switch {
	case size <= 16<<10:
		return o.count4k
	case size <= 256<<10:
		return o.count64k
	default:
		return o.count1m
	}
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("msstore-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	sizes := fs.String("sizes", "4k,64k,1m", "comma-separated body sizes (suffix k, m or g)")
	readSize := fs.String("readsize", "64k", "size whose write phase is read back in the read phase")
	fs.StringVar(&o.dir, "dir", "", "parent directory of the phase directories (default: a new temporary directory)")
	fs.IntVar(&o.writers, "writers", 16, "concurrent writers in the write phases")
	fs.IntVar(&o.readers, "readers", 16, "concurrent readers in the read phase")
	fs.IntVar(&o.count4k, "count4k", 20000, "messages per write phase for sizes up to 16 KiB")
	fs.IntVar(&o.count64k, "count64k", 4000, "messages per write phase for sizes up to 256 KiB")
	fs.IntVar(&o.count1m, "count1m", 400, "messages per write phase for larger sizes")
	fs.IntVar(&o.index, "index", 1000000, "messages of the index phase (0 skips it)")
	fs.BoolVar(&o.keep, "keep", false, "keep the phase directories")
	fs.BoolVar(&o.quick, "quick", false, "tiny counts for a smoke test (200/50/10, -index=20000) unless set explicitly")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if o.quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for name, p := range map[string]*int{"count4k": &o.count4k, "count64k": &o.count64k, "count1m": &o.count1m, "index": &o.index} {
			if !set[name] {
				*p = map[string]int{"count4k": 200, "count64k": 50, "count1m": 10, "index": 20000}[name]
			}
		}
	}
	for _, s := range strings.Split(*sizes, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		n, err := parseSize(s)
		if err != nil {
			return nil, err
		}
		o.sizes = append(o.sizes, n)
	}
	if len(o.sizes) == 0 {
		return nil, errors.New("-sizes: no size given")
	}
	n, err := parseSize(*readSize)
	if err != nil {
		return nil, fmt.Errorf("-readsize: %w", err)
	}
	o.readSize = n
	if o.writers < 1 || o.readers < 1 {
		return nil, errors.New("-writers and -readers must be at least 1")
	}
	if o.count4k < 1 || o.count64k < 1 || o.count1m < 1 || o.index < 0 {
		return nil, errors.New("counts must be positive (-index may be 0)")
	}
	return o, nil
}

// parseSize parses "4k", "64K", "1m", "1g" or a plain byte count.
func parseSize(s string) (int, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := 1
	switch {
	case strings.HasSuffix(t, "k"):
		mult, t = 1<<10, t[:len(t)-1]
	case strings.HasSuffix(t, "m"):
		mult, t = 1<<20, t[:len(t)-1]
	case strings.HasSuffix(t, "g"):
		mult, t = 1<<30, t[:len(t)-1]
	}
	n, err := strconv.Atoi(t)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	return n * mult, nil
}

// sizeName formats a body size the way -sizes takes it, in binary units.
func sizeName(n int) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// run is the parent: it runs every phase in a child and prints the report.
func run(args []string, stdout io.Writer) int {
	o, err := parseFlags(args, os.Stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "msstore-bench:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := runParent(ctx, o, stdout); err != nil {
		fmt.Fprintln(os.Stderr, "msstore-bench: FAILED:", err)
		return 1
	}
	return 0
}

func runParent(ctx context.Context, o *options, stdout io.Writer) (err error) {
	root := o.dir
	if root == "" {
		if root, err = os.MkdirTemp("", "msbench-"); err != nil {
			return err
		}
		if !o.keep {
			defer os.RemoveAll(root)
		}
	} else if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	if root, err = filepath.Abs(root); err != nil {
		return err
	}

	w := bufio.NewWriter(stdout)
	defer w.Flush()
	fmt.Fprintf(w, "msstore benchmark (issue \"msstore\")\n")
	fmt.Fprintf(w, "go: %s %s/%s  GOMAXPROCS=%d  NumCPU=%d\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), runtime.NumCPU())
	fmt.Fprintf(w, "dir: %s  filesystem: %s\n", root, describeFS(root))
	fmt.Fprintf(w, "writers=%d readers=%d sizes=%s counts: <=16KiB %d, <=256KiB %d, larger %d; index=%d\n",
		o.writers, o.readers, joinSizes(o.sizes), o.count4k, o.count64k, o.count1m, o.index)
	fmt.Fprintf(w, "volumes: msstore.Volumes, DefaultConfig, durable Put (fsync before Put returns)\n")
	fmt.Fprintf(w, "files:   file per message, Maildir way: create tmp/<unique>, write, fsync, rename into new/, fsync new/\n")
	fmt.Fprintf(w, "MB = 10^6 bytes; MiB = 2^20 bytes; each (store, size) phase runs in its own child process, fresh directory\n")
	w.Flush()

	// Write phases (and the read phase, in the write child of -readsize).
	var writes []*result
	for _, size := range o.sizes {
		for _, store := range []string{"volumes", "files"} {
			r, err := runChildPhase(ctx, o, root, []string{
				"-phase=write",
				"-store=" + store,
				"-size=" + strconv.Itoa(size),
				"-count=" + strconv.Itoa(o.countFor(size)),
				"-writers=" + strconv.Itoa(o.writers),
				"-readers=" + strconv.Itoa(o.readers),
				"-read=" + strconv.FormatBool(size == o.readSize),
			}, fmt.Sprintf("write-%s-%d", store, size))
			if err != nil {
				return err
			}
			writes = append(writes, r)
		}
	}
	var idx *result
	if o.index > 0 {
		idx, err = runChildPhase(ctx, o, root, []string{
			"-phase=index",
			"-store=volumes",
			"-size=100",
			"-count=" + strconv.Itoa(o.index),
			"-writers=4",
		}, "index")
		if err != nil {
			return err
		}
	}

	printReport(w, o, writes, idx)
	return nil
}

func joinSizes(sizes []int) string {
	var s []string
	for _, n := range sizes {
		s = append(s, strings.ReplaceAll(sizeName(n), " ", ""))
	}
	return strings.Join(s, ",")
}

// runChildPhase runs one phase in a child process in a fresh directory under
// root and returns its result. The directory is removed afterwards unless
// -keep.
func runChildPhase(ctx context.Context, o *options, root string, args []string, name string) (*result, error) {
	dir, err := os.MkdirTemp(root, name+"-")
	if err != nil {
		return nil, err
	}
	if o.keep {
		fmt.Fprintf(os.Stderr, "msstore-bench: keeping %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	args = append(args, "-dir="+dir)
	fmt.Fprintf(os.Stderr, "msstore-bench: %s: running %s\n", time.Now().Format("15:04:05"), strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("child %s (%s) failed after %v: %w", name, strings.Join(args, " "), time.Since(start).Round(time.Millisecond), err)
	}
	var r *result
	for _, line := range strings.Split(out.String(), "\n") {
		if line = strings.TrimSpace(line); strings.HasPrefix(line, "{") {
			var x result
			if err := json.Unmarshal([]byte(line), &x); err == nil && x.Phase != "" {
				r = &x
			}
		}
	}
	if r == nil {
		return nil, fmt.Errorf("child %s printed no result line; its stdout was:\n%s", name, out.String())
	}
	fmt.Fprintf(os.Stderr, "msstore-bench: %s: %s done in %v\n", time.Now().Format("15:04:05"), name, time.Since(start).Round(time.Millisecond))
	return r, nil
}

func mb(bytes int64) float64  { return float64(bytes) / 1e6 }
func mib(bytes int64) float64 { return float64(bytes) / (1 << 20) }

func rate(n float64, sec float64) float64 {
	if sec <= 0 {
		return 0
	}
	return n / sec
}

func printReport(w *bufio.Writer, o *options, writes []*result, idx *result) {
	fmt.Fprintf(w, "\n== write phase: %d concurrent writers, durable puts; time from first put to last put returned (store open/close excluded)\n", o.writers)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "store\tsize\tmsgs\tseconds\tmsgs/s\tMB/s\tfiles\tdirs\tdisk MiB\tpeak RSS MiB\t  store stats\n")
	for _, r := range writes {
		stats := "-"
		if r.Store == "volumes" {
			stats = fmt.Sprintf("volumes=%d bodies=%d live=%.1fMiB dead=%.1fMiB disk=%.1fMiB",
				r.Stats.Volumes, r.Stats.Bodies, mib(r.Stats.LiveBytes), mib(r.Stats.DeadBytes), mib(r.Stats.DiskBytes))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.2f\t%.0f\t%.1f\t%d\t%d\t%.1f\t%.1f\t  %s\n",
			r.Store, sizeName(r.Size), r.Count, r.WriteSeconds,
			rate(float64(r.Count), r.WriteSeconds), rate(mb(int64(r.Count)*int64(r.Size)), r.WriteSeconds),
			r.Files, r.Dirs, mib(r.DiskBytes), float64(r.WriteHWMKiB)/1024, stats)
	}
	tw.Flush()
	fmt.Fprintf(w, "(files/dirs: counted in the phase's data directory tree after the store was closed; disk MiB: allocated blocks of those files)\n")

	fmt.Fprintf(w, "\n== read phase: read back every message of the %s write phase, %d concurrent readers\n", sizeName(o.readSize), o.readers)
	fmt.Fprintf(w, "   data is WARM in the page cache (just written, nothing dropped): this measures the read path, not the disk\n")
	fmt.Fprintf(w, "   volumes: Open + io.Copy(io.Discard, io.NewSectionReader(body, 0, size)); files: os.Open + io.Copy(io.Discard, f)\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	nread := 0
	for _, r := range writes {
		if !r.Read {
			continue
		}
		if nread++; nread == 1 {
			fmt.Fprintf(tw, "store\tsize\tmsgs\tMB\tseconds\tmsgs/s\tMB/s\tpeak RSS MiB (write+read)\t\n")
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.1f\t%.3f\t%.0f\t%.1f\t%.1f\t\n",
			r.Store, sizeName(r.Size), r.ReadCount, mb(r.ReadBytes), r.ReadSeconds,
			rate(float64(r.ReadCount), r.ReadSeconds), rate(mb(r.ReadBytes), r.ReadSeconds), float64(r.PeakKiB)/1024)
	}
	tw.Flush()
	if nread == 0 {
		fmt.Fprintf(w, "   (skipped: %s is not in -sizes)\n", sizeName(o.readSize))
	}

	fmt.Fprintf(w, "\n== index phase")
	if idx == nil {
		fmt.Fprintf(w, ": skipped (-index=0)\n")
	} else {
		fmt.Fprintf(w, ": Volumes with NoSync, %d bodies of %d random bytes, %d writers, then Sync\n", idx.Count, idx.Size, idx.Writers)
		fmt.Fprintf(w, "   heap = runtime.MemStats.HeapAlloc after runtime.GC() twice; baseline taken after opening the empty store\n")
		fmt.Fprintf(w, "   and allocating the []msstore.Ref slice of all refs (so the refs themselves are excluded)\n")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "step\tseconds\tmsgs/s\theap growth MiB\tbytes/msg\t  store stats\n")
		st := func(s statsJSON) string {
			return fmt.Sprintf("volumes=%d bodies=%d live=%.1fMiB dead=%.1fMiB disk=%.1fMiB",
				s.Volumes, s.Bodies, mib(s.LiveBytes), mib(s.DeadBytes), mib(s.DiskBytes))
		}
		fmt.Fprintf(tw, "put %d + Sync (NoSync)\t%.2f\t%.0f\t%.1f\t%.1f\t  %s\n", idx.Count, idx.WriteSeconds,
			rate(float64(idx.Count), idx.WriteSeconds), mib(idx.HeapGrowth), float64(idx.HeapGrowth)/float64(idx.Count), st(idx.Stats))
		fmt.Fprintf(tw, "Close\t%.3f\t\t\t\t\n", idx.CloseSeconds)
		fmt.Fprintf(tw, "reopen (recovery/rebuild)\t%.3f\t%.0f\t%.1f\t%.1f\t  %s\n", idx.OpenSeconds,
			rate(float64(idx.Count), idx.OpenSeconds), mib(idx.ReopenHeapGrowth), float64(idx.ReopenHeapGrowth)/float64(idx.Count), st(idx.ReopenStats))
		fmt.Fprintf(tw, "reopen, no checkpoint (full scan)\t%.3f\t%.0f\t\t\t\n", idx.ScanOpenSeconds, rate(float64(idx.Count), idx.ScanOpenSeconds))
		tw.Flush()
		fmt.Fprintf(w, "   files in data directory: %d (dirs %d), disk %.1f MiB; peak RSS of the index child: %.1f MiB\n",
			idx.Files, idx.Dirs, mib(idx.DiskBytes), float64(idx.PeakKiB)/1024)
		fmt.Fprintf(w, "   after reopen: %d sampled refs opened and read back\n", idx.ReadCount)
	}

	var warnings []string
	for _, r := range append(writes, idx) {
		if r != nil {
			warnings = append(warnings, r.Warnings...)
		}
	}
	if len(warnings) > 0 {
		fmt.Fprintf(w, "\n== WARNINGS (store behaviour that looks wrong)\n")
		for _, s := range warnings {
			fmt.Fprintf(w, "   %s\n", s)
		}
	}
	verified := 0
	for _, r := range writes {
		verified += r.Verified
	}
	fmt.Fprintf(w, "\nverified: %d sampled bodies of the write phases read back and compared byte for byte\n", verified)

	// The ratio line: last line of stdout.
	var base int
	for _, r := range writes {
		if r.Size == 4<<10 {
			base = r.Size
		}
	}
	if base == 0 {
		base = o.sizes[0]
		for _, s := range o.sizes {
			base = min(base, s)
		}
		fmt.Fprintf(w, "\nnote: 4 KiB is not in -sizes; the ratio below is computed at %s\n", sizeName(base))
	}
	var vol, files float64
	for _, r := range writes {
		if r.Size == base {
			v := rate(float64(r.Count), r.WriteSeconds)
			if r.Store == "volumes" {
				vol = v
			} else {
				files = v
			}
		}
	}
	ratio := 0.0
	if files > 0 {
		ratio = vol / files
	}
	fmt.Fprintf(w, "\nwrite throughput at %s: volumes %.0f msgs/s, files %.0f msgs/s\n", sizeName(base), vol, files)
	fmt.Fprintf(w, "ratio_vs_file_per_message=%.2f\n", ratio)
}
