# SPDX-License-Identifier: Apache-2.0
"""A throw-away PostgreSQL cluster for the inventory tests, from Debian's `postgresql` package.

initdb and pg_ctl refuse to run as root, so the cluster belongs to a system user (`postgres`,
made by the package; else the one named by DUET_PG_USER) and lives in a temporary directory
given to that user.  It listens on 127.0.0.1 on a free port only (no Unix socket in /run), with
`trust` for the user duet connects as and scram-sha-256 for a role with a password (the
tests of failed authentication).  Missing binaries fail the tests with a message saying which
package to install; scripts/deps.sh installs it, so CI always runs them.
"""

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from proxyutil import free_port

PASSWORD_ROLE = "duet_pw"
PASSWORD = "Sup3r-Secret-pw"


def pg_bindir():
    """The newest /usr/lib/postgresql/N/bin holding initdb, or None."""
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                  key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    return str(Path(dirs[-1]).parent) if dirs else None


class PgCluster:
    """initdb + pg_ctl start in base (a fresh directory); stop() at the end."""

    def __init__(self, base=None):
        """base: a fresh directory, or None for one of its own under the system's temporary
        directory (world-traversable, unlike pytest's, whose parent another pytest run may
        close again to 0700 while the cluster runs); removed by stop()."""
        self.bindir = pg_bindir()
        self.user = os.environ.get("DUET_PG_USER", "postgres")
        self.own_base = base is None
        self.base = Path(tempfile.mkdtemp(prefix="duet-pg-") if base is None else base)
        self.data = self.base / "data"
        self.port = free_port()
        self.started = False
        self.ndb = 0

    def _as_user(self, *argv, **kw):
        if os.getuid() == 0:
            argv = ("runuser", "-u", self.user, "--", *argv)
        return subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                              timeout=kw.pop("timeout", 120), **kw)

    def start(self):
        pw = pwd.getpwnam(self.user)
        os.chmod(self.base, 0o755)
        # The path down to base must be traversable by the cluster's user.
        p = self.base
        while p != p.parent:
            p = p.parent
            if os.stat(p).st_mode & 0o001 == 0:
                os.chmod(p, os.stat(p).st_mode | 0o001)
        os.chown(self.base, pw.pw_uid, pw.pw_gid)
        pwfile = self.base / "superuser.pw"
        pwfile.write_text("unused-superuser-pw\n")
        os.chown(pwfile, pw.pw_uid, pw.pw_gid)
        r = self._as_user(Path(self.bindir) / "initdb", "-D", self.data, "-U", "postgres",
                          "--auth-local=trust", "--auth-host=trust", "-E", "UTF8",
                          "--no-sync", "--pwfile", pwfile)
        assert r.returncode == 0, r.stdout + r.stderr
        hba = self.data / "pg_hba.conf"
        hba.write_text(
            "host all %s 127.0.0.1/32 scram-sha-256\n" % PASSWORD_ROLE
            + "host all all 127.0.0.1/32 trust\n")
        with open(self.data / "postgresql.conf", "a") as f:
            f.write("listen_addresses = '127.0.0.1'\nport = %d\n" % self.port
                    + "unix_socket_directories = ''\nfsync = off\nmax_connections = 200\n"
                    + "password_encryption = 'scram-sha-256'\n")
        r = self._as_user(Path(self.bindir) / "pg_ctl", "-D", self.data, "-l",
                          self.base / "server.log", "-w", "-t", "60", "start")
        assert r.returncode == 0, r.stdout + r.stderr + self.log()
        self.started = True
        self.sql("CREATE ROLE %s LOGIN PASSWORD '%s'" % (PASSWORD_ROLE, PASSWORD))
        return self

    def log(self):
        p = self.base / "server.log"
        return p.read_text() if p.exists() else ""

    def sql(self, statement, db="postgres"):
        """Run one statement with psql as the superuser; stdout (unaligned, tuples only)."""
        r = subprocess.run([str(Path(self.bindir) / "psql"), "-h", "127.0.0.1", "-p",
                            str(self.port), "-U", "postgres", "-d", db, "-X", "-A", "-t",
                            "-v", "ON_ERROR_STOP=1", "-c", statement],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout.strip()

    def psql_popen(self, statements, db="postgres"):
        """psql running `statements` (a script) as the superuser, in the background."""
        return subprocess.Popen([str(Path(self.bindir) / "psql"), "-h", "127.0.0.1", "-p",
                                 str(self.port), "-U", "postgres", "-d", db, "-X", "-q",
                                 "-v", "ON_ERROR_STOP=1", "-c", statements],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def new_database(self):
        """A fresh empty database; its URL (no password: trust for the superuser)."""
        self.ndb += 1
        name = "duet_t%d" % self.ndb
        self.sql("CREATE DATABASE %s" % name)
        self.sql("GRANT ALL ON SCHEMA public TO %s" % PASSWORD_ROLE, db=name)
        return "postgres://postgres@127.0.0.1:%d/%s" % (self.port, name), name

    def restart(self):
        """Stop the server (fast: clients are cut off) and start it again on the same port."""
        r = self._as_user(Path(self.bindir) / "pg_ctl", "-D", self.data, "-l",
                          self.base / "server.log", "-m", "fast", "-w", "-t", "60", "restart")
        assert r.returncode == 0, r.stdout + r.stderr + self.log()

    def stop(self):
        if not self.started:
            if self.own_base:
                shutil.rmtree(self.base, ignore_errors=True)
            return
        self.started = False
        pidfile = self.data / "postmaster.pid"
        pid = int(pidfile.read_text().split()[0]) if pidfile.exists() else None
        self._as_user(Path(self.bindir) / "pg_ctl", "-D", self.data, "-m", "immediate",
                      "-w", "stop")
        # Never leave a server behind: the postmaster this cluster started, by its pid.
        try:
            cmdline = Path("/proc/%d/cmdline" % pid).read_bytes() if pid else b""
        except OSError:
            cmdline = b""
        if str(self.data).encode() in cmdline:
            os.kill(pid, signal.SIGKILL)
        if self.own_base:
            shutil.rmtree(self.base, ignore_errors=True)


def missing():
    """Why the cluster cannot be made here (a sentence), or None."""
    if pg_bindir() is None or shutil.which("runuser") is None:
        return ("PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/initdb): "
                "install Debian's postgresql package (scripts/deps.sh does)")
    if os.getuid() == 0:
        try:
            pwd.getpwnam(os.environ.get("DUET_PG_USER", "postgres"))
        except KeyError:
            return "no `postgres` system user to run the cluster as (set DUET_PG_USER)"
    return None
