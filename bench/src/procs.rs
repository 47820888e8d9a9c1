//! Child processes the bench starts (stopped by PID on drop, also on error or Ctrl-C) and what
//! `/proc` says about them: CPU time and resident memory.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// How long a child gets to exit after SIGTERM before it is killed, unless told otherwise.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// A child process that is stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
    grace: Duration,
    /// When SIGTERM was sent.
    terminated: Option<Instant>,
    stopped: bool,
}

impl Proc {
    /// Starts `cmd` with stderr (and stdout unless `pipe_stdout`) appended to `log`. The child
    /// also gets SIGKILL if the bench dies without cleaning up (PR_SET_PDEATHSIG). That signal
    /// follows the *thread* that forked, so every child is forked by one thread that lives as
    /// long as the bench ([`spawn_from_lasting_thread`]), not by whichever runtime thread runs the
    /// caller (a blocking-pool thread retires after 10 s idle, and would take the child with it).
    pub fn spawn(name: &str, cmd: &mut Command, log: &Path, pipe_stdout: bool) -> Result<Proc> {
        let err = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let out = if pipe_stdout {
            Stdio::piped()
        } else {
            Stdio::from(err.try_clone()?)
        };
        cmd.stdin(Stdio::null()).stdout(out).stderr(Stdio::from(err));
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let program = cmd.get_program().to_owned();
        let child = spawn_from_lasting_thread(std::mem::replace(cmd, Command::new(&program)))
            .with_context(|| format!("starting {name} ({program:?})"))?;
        Ok(Proc {
            name: name.to_owned(),
            child,
            log: log.to_owned(),
            grace: STOP_GRACE,
            terminated: None,
            stopped: false,
        })
    }

    /// How long the process may take to exit after SIGTERM before it is killed.
    pub fn with_grace(mut self, grace: Duration) -> Proc {
        self.grace = grace;
        self
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The child's stdout, when spawned with `pipe_stdout`.
    pub fn take_stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.child.stdout.take()
    }

    /// Fails if the process has exited (with the tail of its log).
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited early ({status}); its log:\n{}", self.name, self.log_tail(20));
        }
        Ok(())
    }

    /// The last `lines` lines of the process's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Sends SIGTERM (once) without waiting, so that several processes can wind down together.
    pub fn terminate(&mut self) {
        if self.stopped || self.terminated.is_some() {
            return;
        }
        self.terminated = Some(Instant::now());
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill(2) on the PID of our own unreaped child (it cannot have been reused).
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
    }

    /// SIGKILL at once (a crash, for fault injection), and reaps the child.
    pub fn kill_now(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends `signal` (e.g. SIGHUP) unless the process has exited.
    pub fn signal(&mut self, signal: libc::c_int) -> Result<()> {
        if self.stopped || self.child.try_wait()?.is_some() {
            bail!("{} is not running", self.name);
        }
        let pid = libc::pid_t::try_from(self.child.id())?;
        // SAFETY: kill(2) on the PID of our own unreaped child (it cannot have been reused).
        if unsafe { libc::kill(pid, signal) } != 0 {
            bail!("kill({pid}, {signal}): {}", std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// SIGTERM (unless sent already), waits up to the grace period, then SIGKILL; always reaps
    /// the child. Returns how long it took to exit, or None if it had to be killed.
    pub fn stop(&mut self) -> Option<Duration> {
        if self.stopped {
            return Some(Duration::ZERO);
        }
        self.terminate();
        self.stopped = true;
        let since = self.terminated.unwrap_or_else(Instant::now);
        while since.elapsed() < self.grace {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return Some(since.elapsed()),
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        eprintln!(
            "bench: {} did not stop within {:?} of SIGTERM; killing it",
            self.name, self.grace
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

type SpawnJob = (Command, mpsc::Sender<std::io::Result<Child>>);

/// Spawns `cmd` from a thread that lives until the bench exits (see [`Proc::spawn`]).
fn spawn_from_lasting_thread(cmd: Command) -> std::io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnJob>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnJob>();
        std::thread::Builder::new()
            .name("bench-spawner".to_owned())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("starting the spawner thread");
        Mutex::new(tx)
    });
    let (reply, answer) = mpsc::channel();
    spawner
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .send((cmd, reply))
        .map_err(|_| std::io::Error::other("the spawner thread is gone"))?;
    answer
        .recv()
        .map_err(|_| std::io::Error::other("the spawner thread is gone"))?
}

/// Reads `want` lines from a child's stdout within `timeout`; the rest of its output is drained
/// (and dropped) by a background thread so the child never blocks on a full pipe.
pub fn read_lines(stdout: std::process::ChildStdout, want: usize, timeout: Duration) -> Result<Vec<String>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                // Nobody listens any more: keep draining.
                continue;
            }
        }
    });
    let deadline = Instant::now() + timeout;
    let mut lines = Vec::with_capacity(want);
    while lines.len() < want {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => lines.push(line),
            Err(_) => bail!("got {} of {want} lines within {timeout:?}", lines.len()),
        }
    }
    Ok(lines)
}

/// Whether the `count` loopback ports from `base` are free right now.
pub fn ports_free(base: u16, count: u16) -> bool {
    (0..count).all(|i| {
        base.checked_add(i)
            .is_some_and(|port| TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).is_ok())
    })
}

/// `count` consecutive loopback ports free right now, below the ephemeral range; the first.
pub fn free_port_run(count: u16) -> Result<u16> {
    let span = 12_000u32;
    let offset = std::process::id() % span;
    for i in 0..span {
        let base = 20_000 + u16::try_from((offset + i * 7919) % span).unwrap_or(0);
        if ports_free(base, count) {
            return Ok(base);
        }
    }
    bail!("no {count} consecutive free ports in 20000..32000")
}

/// A loopback port free right now (the small race with other programs is accepted).
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
    Ok(listener.local_addr()?.port())
}

/// User + system CPU time of a process so far.
pub fn cpu_time(pid: u32) -> Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may contain spaces) start at field 3 (state).
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("malformed /proc/PID/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> Result<u64> { Ok(fields.get(i).context("short /proc/PID/stat")?.parse::<u64>()?) };
    let (utime, stime) = (ticks(11)?, ticks(12)?);
    Ok(ticks_to_duration(utime + stime))
}

/// CPU time all processes of the machine have spent busy so far (every core summed; /proc/stat).
pub fn machine_busy_time() -> Result<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").context("/proc/stat")?;
    let line = stat.lines().next().context("empty /proc/stat")?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|t| t.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user)
    let busy: u64 = ticks
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, t)| t)
        .sum();
    Ok(ticks_to_duration(busy))
}

/// This process's own CPU time (the load generator's).
pub fn own_cpu_time() -> Result<Duration> {
    cpu_time(std::process::id())
}

fn ticks_to_duration(ticks: u64) -> Duration {
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let per_second = u64::try_from(per_second).ok().filter(|&t| t > 0).unwrap_or(100);
    Duration::from_nanos(ticks.saturating_mul(1_000_000_000) / per_second)
}

/// Resident set size in bytes (VmRSS).
pub fn rss_bytes(pid: u32) -> Result<u64> {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).with_context(|| format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS in /proc/PID/status")?;
    let kib: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_cpu_and_rss() {
        let pid = std::process::id();
        assert!(rss_bytes(pid).unwrap() > 0);
        let mut x = 0u64;
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(50) {
            x = x.wrapping_add(1);
        }
        assert!(x > 0);
        assert!(cpu_time(pid).unwrap() > Duration::ZERO);
        assert!(machine_busy_time().unwrap() > Duration::ZERO);
    }

    #[test]
    fn ticks_convert() {
        assert!(ticks_to_duration(0).is_zero());
        assert!(ticks_to_duration(1_000) >= Duration::from_secs(1));
    }
}
