use std::sync::{Arc, Mutex};

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

// The `system` section of `/api/v1/metrics`, sampled on an interval by the
// metrics actor (CPU usage needs two samples apart in time).
/// Process and machine figures, sampled every 2 s.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SystemFigures {
    pub cpu_percent: f64,
    /// This process's resident memory.
    pub memory_mb: f64,
    /// The machine's memory in use.
    pub memory_percent: f64,
    pub memory_available_mb: f64,
    /// Read by this process since start.
    pub disk_read_mb: f64,
    pub disk_write_mb: f64,
}

pub(super) struct Sampler {
    sys: System,
    pid: Option<Pid>,
    out: Arc<Mutex<SystemFigures>>,
}

impl Sampler {
    pub(super) fn new(out: Arc<Mutex<SystemFigures>>) -> Self {
        let mut s = Self {
            sys: System::new(),
            pid: sysinfo::get_current_pid().ok(),
            out,
        };
        s.sample();
        s
    }

    pub(super) fn sample(&mut self) {
        const MB: f64 = 1024.0 * 1024.0;
        self.sys.refresh_cpu_usage();
        self.sys.refresh_memory();
        let mut f = SystemFigures {
            cpu_percent: round1(self.sys.global_cpu_usage() as f64),
            memory_available_mb: round1(self.sys.available_memory() as f64 / MB),
            ..Default::default()
        };
        let total = self.sys.total_memory() as f64;
        if total > 0.0 {
            let used = total - self.sys.available_memory() as f64;
            f.memory_percent = round1(used * 100.0 / total);
        }
        if let Some(pid) = self.pid {
            self.sys.refresh_processes_specifics(
                ProcessesToUpdate::Some(&[pid]),
                false,
                ProcessRefreshKind::nothing()
                    .with_memory()
                    .with_disk_usage(),
            );
            if let Some(p) = self.sys.process(pid) {
                f.memory_mb = round1(p.memory() as f64 / MB);
                let d = p.disk_usage();
                f.disk_read_mb = round1(d.total_read_bytes as f64 / MB);
                f.disk_write_mb = round1(d.total_written_bytes as f64 / MB);
            }
        }
        if let Ok(mut out) = self.out.lock() {
            *out = f;
        }
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}
