//! The audit trail on disk: `<data>/audit/audit.log`, one JSON record per
//! line, rotated to `audit.log.1` when it passes its size cap, so the
//! trail never takes more than twice the cap.

use crate::protocol::audit::AuditRecord;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

pub const FILE_NAME: &str = "audit.log";
pub const ROTATED_NAME: &str = "audit.log.1";

/// The open trail.
#[derive(Debug)]
pub struct TrailFile {
    dir: PathBuf,
    file: File,
    len: u64,
    max_size: u64,
}

impl TrailFile {
    /// Opens (creating) the trail in `dir`.
    pub fn open(dir: &Path, max_size: u64) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let file = open_append(&dir.join(FILE_NAME))?;
        let len = file.metadata()?.len();
        Ok(Self {
            dir: dir.to_owned(),
            file,
            len,
            max_size,
        })
    }

    /// Appends lines, rotating first if they would pass the cap, then
    /// syncs: a record that has been written survives a power cut.
    pub fn append(&mut self, lines: &[String]) -> io::Result<()> {
        let mut buf = String::new();
        for line in lines {
            let size = line.len() as u64 + 1;
            if self.len + buf.len() as u64 + size > self.max_size && self.len + buf.len() as u64 > 0 {
                self.write(&buf)?;
                buf.clear();
                self.rotate()?;
            }
            buf.push_str(line);
            buf.push('\n');
        }
        self.write(&buf)?;
        self.file.sync_data()
    }

    fn write(&mut self, buf: &str) -> io::Result<()> {
        self.file.write_all(buf.as_bytes())?;
        self.len += buf.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.sync_data()?;
        std::fs::rename(self.dir.join(FILE_NAME), self.dir.join(ROTATED_NAME))?;
        self.file = open_append(&self.dir.join(FILE_NAME))?;
        self.len = 0;
        crate::sys::fs::sync_dir(&self.dir)?;
        Ok(())
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// The records kept in `dir` that `keep` accepts, oldest first, at most
/// the last `limit`. Lines that do not parse (a torn last line after a
/// crash) are skipped.
pub fn read(dir: &Path, keep: impl Fn(&AuditRecord) -> bool, limit: usize) -> io::Result<Vec<AuditRecord>> {
    let mut found = std::collections::VecDeque::with_capacity(limit.min(1024));
    for name in [ROTATED_NAME, FILE_NAME] {
        let file = match File::open(dir.join(name)) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for line in BufReader::new(file).lines() {
            let Ok(record) = serde_json::from_str::<AuditRecord>(&line?) else {
                continue;
            };
            if keep(&record) {
                if found.len() == limit {
                    found.pop_front();
                }
                found.push_back(record);
            }
        }
    }
    Ok(found.into())
}
