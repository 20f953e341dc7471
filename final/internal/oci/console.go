package oci

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The container's terminal is a pseudo-terminal of the container's own
// devpts instance (/dev/ptmx is its pts/ptmx), made by the process
// itself after pivot_root, as runc does: a terminal of the host's
// devpts would not be in the container's /dev/pts at all, and a program
// that looks its terminal up there (tty(1)) would say "not a tty". The
// host end, the master, goes to whoever asked for the terminal, over the
// console socket (a unix socket given to create or exec), as an
// SCM_RIGHTS message; the other end becomes the process's stdin, stdout,
// stderr and controlling terminal. pty(7), unix(7)

// setupConsole makes the pty, sends its master over socket (a connected
// unix socket), and makes the slave the calling process's terminal; for
// the container's own process (devConsole), its /dev/console as well.
func setupConsole(socket *os.File, size *specs.Box, devConsole bool) error {
	master, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /dev/ptmx (is /dev/pts a devpts mount with ptmxmode?): %w", err)
	}
	defer unix.Close(master)
	// unlockpt(3) and ptsname(3), as ioctls: TIOCSPTLCK, TIOCGPTN.
	if err := unix.IoctlSetPointerInt(master, unix.TIOCSPTLCK, 0); err != nil {
		return fmt.Errorf("unlockpt: %w", err)
	}
	n, err := unix.IoctlGetInt(master, unix.TIOCGPTN)
	if err != nil {
		return fmt.Errorf("ptsname: %w", err)
	}
	name := "/dev/pts/" + strconv.Itoa(n)
	slave, err := unix.Open(name, unix.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", name, err)
	}
	if devConsole {
		if err := bindConsole(name); err != nil {
			return err
		}
	}
	if size != nil {
		ws := &unix.Winsize{Row: uint16(size.Height), Col: uint16(size.Width)}
		if err := unix.IoctlSetWinsize(master, unix.TIOCSWINSZ, ws); err != nil {
			return fmt.Errorf("set the terminal's size: %w", err)
		}
	}
	rights := unix.UnixRights(master)
	if err := unix.Sendmsg(int(socket.Fd()), []byte(name), rights, nil, 0); err != nil {
		return fmt.Errorf("send the terminal over the console socket: %w", err)
	}
	socket.Close()
	// A new session, with the slave as its controlling terminal.
	if _, err := unix.Setsid(); err != nil {
		return fmt.Errorf("setsid: %w", err)
	}
	if err := unix.IoctlSetInt(slave, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("TIOCSCTTY: %w", err)
	}
	for fd := 0; fd < 3; fd++ {
		if err := unix.Dup3(slave, fd, 0); err != nil {
			return fmt.Errorf("dup3: %w", err)
		}
	}
	if slave > 2 {
		unix.Close(slave)
	}
	return nil
}

// dialConsole connects to the engine's console socket (--console-socket),
// over which the terminal's master goes; the connection, as a file, is
// passed to the container's process, which sends it. unix(7)
func dialConsole(path string) (*os.File, error) {
	conn, err := net.Dial("unix", path)
	if err != nil {
		return nil, fmt.Errorf("console socket: %w", err)
	}
	defer conn.Close()
	return conn.(*net.UnixConn).File()
}

// consoleFile is the console socket for the process: a copy of the
// caller's connected socket, or a new connection to the path.
func consoleFile(conn *os.File, path string) (*os.File, error) {
	if conn == nil {
		return dialConsole(path)
	}
	fd, err := unix.FcntlInt(conn.Fd(), unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return nil, fmt.Errorf("console socket: %w", err)
	}
	return os.NewFile(uintptr(fd), "console"), nil
}

// RecvConsole receives the terminal's master that the container's
// process sends over the console socket sock, as conmon and
// containerd's shim do with the socket they give --console-socket.
func RecvConsole(sock *os.File) (*os.File, error) {
	buf := make([]byte, 256)
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("receive the terminal: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, errors.New("receive the terminal: no descriptor came")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, errors.New("receive the terminal: not one descriptor")
	}
	return os.NewFile(uintptr(fds[0]), "ptmx"), nil
}

// setStdio gives cmd the caller's stdin, stdout and stderr, or ours.
func setStdio(cmd *exec.Cmd, stdin io.Reader, stdout, stderr io.Writer) {
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	if stdin == nil {
		cmd.Stdin = os.Stdin
	}
	if stdout == nil {
		cmd.Stdout = os.Stdout
	}
	if stderr == nil {
		cmd.Stderr = os.Stderr
	}
}

// bindConsole makes the container's /dev/console its terminal, as runc
// does: a bind mount of the pty's slave on an empty file, so that
// programs that write to the console (init systems, getty) reach the
// engine's terminal. console(4)
// Equivalent to: touch /dev/console && mount --bind /dev/pts/N /dev/console
func bindConsole(slave string) error {
	fd, err := unix.Open("/dev/console", unix.O_CREAT|unix.O_NOFOLLOW|unix.O_RDONLY|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("/dev/console: %w", err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG && st.Mode&unix.S_IFMT != unix.S_IFCHR {
		return errors.New("/dev/console is neither a file nor a device: refused")
	}
	if err := unix.Mount(slave, fmt.Sprintf("/proc/self/fd/%d", fd), "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s on /dev/console: %w", slave, err)
	}
	return nil
}
