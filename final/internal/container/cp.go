package container

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/gocell/gocell/final/internal/inroot"
	"github.com/gocell/gocell/final/internal/rootfs"
	"golang.org/x/sys/unix"
)

// ErrCopy marks a cp the user asked wrongly: a path that is not there, or
// that climbs out.
var ErrCopy = errors.New("cp")

// The container's side of a copy is its root as its own process sees it,
// /proc/PID/root, volumes and all (or, if it does not run, its overlay); every path there is resolved with
// openat2(2) inside that root (RESOLVE_IN_ROOT, no magic links), and every
// entry is then opened, made or read relative to its directory's
// descriptor, with O_NOFOLLOW: a symlink the container made is copied as a
// symlink, and never leads the copy anywhere, on either side. Files that
// leave a container lose their set-user-ID and set-group-ID bits: they are
// the container's, and would be root's on the host.

// CopyFrom copies src, a path in the container (relative ones from its
// working directory), to dst on the host: into dst if it is a directory,
// else as dst. The container may run or not.
func (s *Store) CopyFrom(ctx context.Context, ref, src, dst string) error {
	return s.copyWith(ref, func(root int, st *State, running bool) error {
		if err := notMounted(st, src, running); err != nil {
			return err
		}
		srcDir, name, err := containerPath(root, st, src)
		if err != nil {
			return err
		}
		defer unix.Close(srcDir)
		dstDir, newName, err := hostTarget(dst, name)
		if err != nil {
			return err
		}
		defer unix.Close(dstDir)
		return copyInto(srcDir, name, dstDir, newName, copyRules{ctx: ctx, fromContainer: true, uid: -1, gid: -1})
	})
}

// CopyTo copies src on the host into the container at dst: into dst if it
// is a directory there, else as dst. What it makes belongs to the
// container's root (uid 0, or UserNSHostID with --userns).
func (s *Store) CopyTo(ctx context.Context, ref, src, dst string) error {
	return s.copyWith(ref, func(root int, st *State, running bool) error {
		for _, p := range []string{dst, filepath.Join(dst, filepath.Base(src))} {
			if err := notMounted(st, p, running); err != nil {
				return err
			}
		}
		if !running && st.Spec.ReadOnly {
			return fmt.Errorf("%w: %s has a read-only root (--read-only)", ErrCopy, st.Name)
		}
		abs, err := filepath.Abs(src)
		if err != nil {
			return err
		}
		if abs == "/" {
			return fmt.Errorf("%w: %s: the host's whole root is not copied; name a directory in it", ErrCopy, src)
		}
		srcDir, err := unix.Open(filepath.Dir(abs), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrCopy, src, err)
		}
		defer unix.Close(srcDir)
		name := filepath.Base(abs)
		var fst unix.Stat_t
		if err := unix.Fstatat(srcDir, name, &fst, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrCopy, src, err)
		}
		dstDir, newName, err := containerTarget(root, st, dst, name)
		if err != nil {
			return err
		}
		defer unix.Close(dstDir)
		id := 0
		if st.Spec.UserNS {
			id = UserNSHostID
		}
		return copyInto(srcDir, name, dstDir, newName, copyRules{ctx: ctx, uid: id, gid: id})
	})
}

// copyWith opens the root of a running (or paused) container and runs fn
// with it. The pid is checked after the root is opened, so that a
// container that ended meanwhile, its pid reused, cannot hand us another
// process's root.
func (s *Store) copyWith(ref string, fn func(root int, st *State, running bool) error) error {
	st, err := s.Get(ref)
	if err != nil {
		return err
	}
	if st.Status != Running && st.Status != Paused {
		// Held for the copy: the container cannot start meanwhile and
		// mount its overlay a second time over the same directories.
		unlock, err := lockFile(filepath.Join(s.Dir(st.ID), "lock"))
		if err != nil {
			return err
		}
		defer unlock()
		if st, err = s.read(st.ID); err != nil {
			return err
		}
		if st.Status == Running || st.Status == Paused || st.Monitor != 0 {
			return fmt.Errorf("%w: %s started while cp began; try again", ErrRunning, st.Name)
		}
		root, err := s.stoppedRoot(st)
		if err != nil {
			return fmt.Errorf("cp: the root of %s: %w", st.Name, err)
		}
		defer unix.Close(root)
		return fn(root, st, false)
	}
	root, err := unix.Open(fmt.Sprintf("/proc/%d/root", st.Pid), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil || !alive(st.Pid, st.PidStart) {
		if err == nil {
			unix.Close(root)
		}
		return fmt.Errorf("%w: %s stopped", ErrNotRunning, st.Name)
	}
	defer unix.Close(root)
	return fn(root, st, true)
}

// stoppedRoot opens the root of a container that does not run: its
// overlay, mounted in a mount namespace of a thread of its own and
// detached at once. The descriptor holds the mount; the host's mount
// table never shows it, and it goes when the descriptor is closed.
// unshare(2) CLONE_NEWNS, umount2(2) MNT_DETACH
func (s *Store) stoppedRoot(st *State) (int, error) {
	type opened struct {
		fd  int
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		// Never unlocked: the thread ends with the goroutine, and its
		// mount namespace with it.
		runtime.LockOSThread()
		fd, err := func() (int, error) {
			if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
				return -1, err
			}
			if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
				return -1, err
			}
			dir := s.Dir(st.ID)
			merged := filepath.Join(dir, "merged")
			if err := rootfs.Mount(rootfs.Options{Layers: st.Spec.Layers, Upper: filepath.Join(dir, "upper"),
				Work: filepath.Join(dir, "work"), Merged: merged}); err != nil {
				return -1, err
			}
			fd, err := unix.Open(merged, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			unix.Unmount(merged, unix.MNT_DETACH)
			return fd, err
		}()
		ch <- opened{fd, err}
	}()
	o := <-ch
	return o.fd, o.err
}

// notMounted refuses, for a container that does not run, a path at or
// under what is mounted in it when it runs (volumes, tmpfs, its /etc
// files, /proc, /sys, /dev): its overlay alone has not those, and a file
// made there would keep the mount from being made at the next start.
func notMounted(st *State, p string, running bool) error {
	if running {
		return nil
	}
	clean, err := inContainer(st, p)
	if err != nil {
		return err
	}
	points := []string{"/proc", "/sys", "/dev", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf"}
	for _, m := range st.Spec.Mounts {
		points = append(points, m.Destination)
	}
	tmpfs := st.Spec.Tmpfs
	if st.Spec.ReadOnly {
		tmpfs = append(tmpfs, "/tmp", "/run")
	}
	for _, t := range tmpfs {
		dest, _, _ := strings.Cut(t, ":")
		points = append(points, dest)
	}
	for _, pt := range points {
		pt = filepath.Clean(pt)
		if clean == pt || strings.HasPrefix(clean, pt+"/") {
			return fmt.Errorf("%w: %s is on %s, which is mounted only while %s runs: start it first",
				ErrCopy, clean, pt, st.Name)
		}
	}
	return nil
}

// inContainer turns a path given for the container into one from its
// root, refusing one that climbs with "..": in the root there is nowhere
// to climb to, and such a path is a mistake or an attempt.
func inContainer(st *State, p string) (string, error) {
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return "", fmt.Errorf("%w: %s: a path in the container may not climb with ..", ErrCopy, p)
		}
	}
	if !filepath.IsAbs(p) {
		wd := st.Spec.WorkingDir
		if wd == "" {
			wd = "/"
		}
		p = filepath.Join(wd, p)
	}
	return filepath.Clean(p), nil
}

// containerPath opens the directory that holds p in the container, and
// returns it with p's last element ("." for the root itself).
func containerPath(root int, st *State, p string) (int, string, error) {
	clean, err := inContainer(st, p)
	if err != nil {
		return -1, "", err
	}
	dir, name := filepath.Dir(clean), filepath.Base(clean)
	if clean == "/" {
		dir, name = "/", "."
	}
	fd, err := inroot.Open(root, dir, unix.O_PATH|unix.O_DIRECTORY, inroot.Follow)
	if err != nil {
		return -1, "", fmt.Errorf("%w: %s: no such directory in %s", ErrCopy, dir, st.Name)
	}
	var fst unix.Stat_t
	if err := unix.Fstatat(fd, name, &fst, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		unix.Close(fd)
		return -1, "", fmt.Errorf("%w: %s: no such file in %s", ErrCopy, clean, st.Name)
	}
	return fd, name, nil
}

// containerTarget is where a copy into the container goes: into dst if it
// is a directory there, under name; else dst's directory, under dst's
// last element.
func containerTarget(root int, st *State, dst, name string) (int, string, error) {
	clean, err := inContainer(st, dst)
	if err != nil {
		return -1, "", err
	}
	fd, err := inroot.Open(root, clean, unix.O_PATH|unix.O_DIRECTORY, inroot.Follow)
	if err == nil {
		return fd, name, nil
	}
	if strings.HasSuffix(dst, "/") {
		// As Docker: a path ending in / must be a directory.
		return -1, "", fmt.Errorf("%w: %s: not a directory in %s (%v)", ErrCopy, dst, st.Name, unwrapErrno(err))
	}
	fd, err = inroot.Open(root, filepath.Dir(clean), unix.O_PATH|unix.O_DIRECTORY, inroot.Follow)
	if err != nil {
		return -1, "", fmt.Errorf("%w: %s: no such directory in %s", ErrCopy, filepath.Dir(clean), st.Name)
	}
	return fd, filepath.Base(clean), nil
}

// hostTarget is where a copy onto the host goes, by the same rule. What
// is there already may be replaced only if it is a file or a symlink: a
// device such as /dev/null, or a FIFO, is refused.
func hostTarget(dst, name string) (int, string, error) {
	if name == "." {
		name = "root"
	}
	if dst == "-" {
		return -1, "", fmt.Errorf("%w: -: a tar stream on stdout is not supported; give a path", ErrCopy)
	}
	fd, err := unix.Open(dst, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err == nil {
		return fd, name, nil
	}
	var fi unix.Stat_t
	if unix.Lstat(dst, &fi) == nil && fi.Mode&unix.S_IFMT != unix.S_IFREG {
		// A device (/dev/null), a FIFO, or a symlink (/dev/stdout):
		// the copy would replace the node itself.
		return -1, "", fmt.Errorf("%w: %s is not a regular file or a directory: not replaced", ErrCopy, dst)
	}
	if strings.HasSuffix(dst, "/") {
		return -1, "", fmt.Errorf("%w: %s: not a directory (%v)", ErrCopy, dst, err)
	}
	abs, err := filepath.Abs(dst)
	if err != nil {
		return -1, "", err
	}
	fd, err = unix.Open(filepath.Dir(abs), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, "", fmt.Errorf("%w: %s: no such directory", ErrCopy, filepath.Dir(abs))
	}
	return fd, filepath.Base(abs), nil
}

// copyRules say what a copy changes: the owner of what it makes (-1:
// the copier's), and, for a copy out of a container, that set-ID bits go
// and that the container's /proc and /sys stay where they are.
type copyRules struct {
	uid, gid      int
	fromContainer bool
	// ctx, once done (Ctrl-C), stops the copy; what it made goes.
	ctx context.Context
}

// copyInto copies the entry name of srcDir to dstDir as newName. A new
// entry is made under a temporary name and renamed into place once whole,
// so a copy that fails leaves nothing half-written; a directory that is
// there already is copied into, as Docker does, each file replacing its
// namesake whole.
func copyInto(srcDir int, name string, dstDir int, newName string, r copyRules) error {
	// One element each, relative to its directory: an absolute name
	// would make the *at calls ignore the descriptor.
	for _, n := range []string{name, newName} {
		if n == "" || strings.Contains(n, "/") || n == ".." {
			return fmt.Errorf("%w: %q is not a name in a directory", ErrCopy, n)
		}
	}
	var fst, dst unix.Stat_t
	if err := unix.Fstatat(srcDir, name, &fst, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	switch fst.Mode & unix.S_IFMT {
	case unix.S_IFDIR, unix.S_IFREG, unix.S_IFLNK:
	default:
		return fmt.Errorf("%w: %s is not a file, a directory or a symlink: not copied", ErrCopy, name)
	}
	if r.fromContainer && fst.Mode&unix.S_IFMT == unix.S_IFDIR {
		if err := notProcOrSys(srcDir, name); err != nil {
			return err
		}
	}
	exists := unix.Fstatat(dstDir, newName, &dst, unix.AT_SYMLINK_NOFOLLOW) == nil
	if exists && fst.Mode&unix.S_IFMT == unix.S_IFDIR && dst.Mode&unix.S_IFMT == unix.S_IFDIR {
		return copyEntry(srcDir, name, dstDir, newName, newName, r)
	}
	if exists && dst.Mode&unix.S_IFMT == unix.S_IFDIR {
		// A file over a directory: rename(2) cannot; Docker refuses too.
		return fmt.Errorf("%w: %s is a directory, and what is copied is not", ErrCopy, newName)
	}
	tmp := tempName()
	if err := copyEntry(srcDir, name, dstDir, tmp, newName, r); err != nil {
		removeAt(dstDir, tmp)
		return err
	}
	if err := unix.Renameat(dstDir, tmp, dstDir, newName); err != nil {
		removeAt(dstDir, tmp)
		return fmt.Errorf("%s: %w", newName, err)
	}
	return nil
}

// tempName is a name no one has: a copy is made under it, then renamed.
func tempName() string {
	var rnd [8]byte
	rand.Read(rnd[:])
	return fmt.Sprintf(".gocell-cp-%x", rnd)
}

// The file systems a copy out of a container leaves alone: read by us,
// root on the host, they would show what the container itself may not
// see (kernel addresses in /proc/kallsyms), or block (/proc/kmsg).
// statfs(2)
var virtualFS = map[int64]string{unix.PROC_SUPER_MAGIC: "/proc", unix.SYSFS_MAGIC: "/sys"}

// notProcOrSys refuses name in dir if it is on procfs or sysfs.
func notProcOrSys(dir int, name string) error {
	fd, err := unix.Openat(dir, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil {
		return err
	}
	if where, ok := virtualFS[sfs.Type]; ok {
		return fmt.Errorf("%w: %s is in the container's %s, which cp does not copy", ErrCopy, name, where)
	}
	return nil
}

// sameFile checks that an opened entry is the one stat saw: in between,
// the container may have put something else there (a FIFO, to hang us).
func sameFile(fd int, want *unix.Stat_t) error {
	var got unix.Stat_t
	if err := unix.Fstat(fd, &got); err != nil {
		return err
	}
	if got.Dev != want.Dev || got.Ino != want.Ino || got.Mode&unix.S_IFMT != want.Mode&unix.S_IFMT {
		return fmt.Errorf("changed while it was copied")
	}
	return nil
}

// copyEntry copies one entry, and a directory's entries after it. path
// names it in messages.
func copyEntry(srcDir int, name string, dstDir int, newName, path string, r copyRules) error {
	err := copyOne(srcDir, name, dstDir, newName, path, r)
	if err != nil && !errors.Is(err, ErrCopy) && !strings.HasPrefix(err.Error(), path+":") {
		err = fmt.Errorf("%s: %w", path, err)
	}
	return err
}

func copyOne(srcDir int, name string, dstDir int, newName, path string, r copyRules) error {
	var st unix.Stat_t
	if err := unix.Fstatat(srcDir, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	mode := st.Mode & 0o7777
	if r.fromContainer {
		mode &^= unix.S_ISUID | unix.S_ISGID
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		made := true
		if err := unix.Mkdirat(dstDir, newName, 0o700); errors.Is(err, unix.EEXIST) {
			made = false // copied into, as it is
		} else if err != nil {
			return err
		}
		in, err := unix.Openat(srcDir, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		dir := os.NewFile(uintptr(in), name)
		defer dir.Close()
		if err := sameFile(in, &st); err != nil {
			return err
		}
		if r.fromContainer {
			var sfs unix.Statfs_t
			if unix.Fstatfs(in, &sfs) == nil && virtualFS[sfs.Type] != "" {
				return nil // the container's /proc or /sys, below what is copied
			}
		}
		out, err := unix.Openat(dstDir, newName, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(out)
		names, err := dir.Readdirnames(-1)
		if err != nil {
			return err
		}
		for _, n := range names {
			if err := r.ctx.Err(); err != nil {
				return err
			}
			if err := copyEntry(in, n, out, n, path+"/"+n, r); err != nil {
				return err
			}
		}
		if !made {
			return nil
		}
		if err := unix.Fchmod(out, mode); err != nil {
			return err
		}
		return chown(out, r)
	case unix.S_IFREG:
		// O_NONBLOCK: should a FIFO have taken the file's place, open
		// must not wait for a writer; sameFile then refuses it.
		in, err := unix.Openat(srcDir, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		src := os.NewFile(uintptr(in), name)
		defer src.Close()
		if err := sameFile(in, &st); err != nil {
			return err
		}
		if r.fromContainer {
			var sfs unix.Statfs_t
			if unix.Fstatfs(in, &sfs) == nil && virtualFS[sfs.Type] != "" {
				return fmt.Errorf("%w: %s is in the container's %s, which cp does not copy", ErrCopy, path, virtualFS[sfs.Type])
			}
		}
		tmp := tempName()
		out, err := unix.Openat(dstDir, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return err
		}
		dst := os.NewFile(uintptr(out), newName)
		defer dst.Close()
		// No more than stat saw: a file that grows while we read it
		// does not make the copy grow with it.
		if err := copyData(r.ctx, dst, src, st.Size); err != nil {
			unix.Unlinkat(dstDir, tmp, 0)
			return err
		}
		err = unix.Fchmod(out, mode)
		if err == nil {
			err = chown(out, r)
		}
		if err == nil {
			err = unix.Renameat(dstDir, tmp, dstDir, newName)
		}
		if err != nil {
			unix.Unlinkat(dstDir, tmp, 0)
		}
		return err
	case unix.S_IFLNK:
		target, err := inroot.Readlink(srcDir, name)
		if err != nil {
			return err
		}
		tmp := tempName()
		if err := unix.Symlinkat(target, dstDir, tmp); err != nil {
			return err
		}
		if r.uid >= 0 {
			err = unix.Fchownat(dstDir, tmp, r.uid, r.gid, unix.AT_SYMLINK_NOFOLLOW)
		}
		if err == nil {
			err = unix.Renameat(dstDir, tmp, dstDir, newName)
		}
		if err != nil {
			unix.Unlinkat(dstDir, tmp, 0)
		}
		return err
	}
	// Devices, FIFOs and sockets are not files to copy.
	return nil
}

// copyData copies the first size bytes of src to dst, and leaves the
// holes of a sparse file holes: a file made with truncate -s 10T inside
// a container is 10 TB long and takes no space, and must not fill the
// host's disk with zeros when it is copied out. lseek(2) SEEK_DATA and
// SEEK_HOLE; a file system without them has no holes to keep.
func copyData(ctx context.Context, dst, src *os.File, size int64) error {
	for off := int64(0); off < size; {
		if err := ctx.Err(); err != nil {
			return err
		}
		data, err := unix.Seek(int(src.Fd()), off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole is left
		}
		if err != nil {
			data = off
		}
		hole, err := unix.Seek(int(src.Fd()), data, unix.SEEK_HOLE)
		if err != nil || hole > size {
			hole = size
		}
		if data >= size {
			break
		}
		if _, err := src.Seek(data, io.SeekStart); err != nil {
			return err
		}
		if _, err := dst.Seek(data, io.SeekStart); err != nil {
			return err
		}
		// In pieces, so that Ctrl-C stops a long copy soon.
		for n := hole - data; n > 0; {
			if err := ctx.Err(); err != nil {
				return err
			}
			chunk := min(n, 8<<20)
			if _, err := io.CopyN(dst, src, chunk); err != nil && err != io.EOF {
				return err
			}
			n -= chunk
		}
		off = hole
	}
	// The length, holes at the end included.
	return dst.Truncate(size)
}

// chown gives what was made to the owner the rules say.
func chown(fd int, r copyRules) error {
	if r.uid < 0 {
		return nil
	}
	return unix.Fchown(fd, r.uid, r.gid)
}

// removeAt removes name in dir and everything under it, without following
// symlinks.
func removeAt(dir int, name string) {
	if unix.Unlinkat(dir, name, 0) == nil {
		return
	}
	fd, err := unix.Openat(dir, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	f := os.NewFile(uintptr(fd), name)
	names, _ := f.Readdirnames(-1)
	for _, n := range names {
		removeAt(fd, n)
	}
	f.Close()
	unix.Unlinkat(dir, name, unix.AT_REMOVEDIR)
}

// unwrapErrno is the system call's error alone, for a short message.
func unwrapErrno(err error) error {
	var errno unix.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return err
}
