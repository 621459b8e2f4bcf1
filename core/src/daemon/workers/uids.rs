//! A uid per worker group (`[workers] uids = "FIRST-LAST"`), when the
//! daemon runs as root: two groups' workers never share a uid, so the
//! kernel keeps them out of each other's processes and files even where
//! Landlock is missing. Each group gets the next free uid of the range
//! (and the gid of the same number) the first time it needs a worker; the
//! choice is kept in `<data>/workers-uids` ("GROUP UID" lines), so a group
//! keeps its uid, and the files it wrote, across restarts.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

/// The file under the data directory.
pub const FILE: &str = "workers-uids";

/// Why a group could not be given a uid of its own.
#[derive(Debug, thiserror::Error)]
pub enum UidError {
    #[error(
        "every uid of workers.uids ({first}-{last}) is taken by another group; \
         widen the range or remove unused groups from {}",
        .file.display()
    )]
    Exhausted { first: u32, last: u32, file: PathBuf },
    #[error("cannot record the uid of worker group `{group}` in {}: {source}", .file.display())]
    Record {
        group: String,
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Parses `"FIRST-LAST"`: unprivileged, at least one uid, none that
/// this system's user database already names.
pub fn parse_range(text: &str) -> Result<RangeInclusive<u32>, String> {
    let bad = || format!("`{text}`: expected FIRST-LAST, two uids above 0 (for example \"1879048192-1879049191\")");
    let (first, last) = text.split_once('-').ok_or_else(bad)?;
    let first: u32 = first.trim().parse().map_err(|_| bad())?;
    let last: u32 = last.trim().parse().map_err(|_| bad())?;
    if first == 0 || last < first {
        return Err(bad());
    }
    if last - first >= 1 << 20 {
        return Err(format!("`{text}`: at most 1048576 uids"));
    }
    Ok(first..=last)
}

/// The uids given to groups so far.
#[derive(Debug)]
pub struct UidBook {
    range: RangeInclusive<u32>,
    file: PathBuf,
    given: Mutex<BTreeMap<String, u32>>,
}

impl UidBook {
    /// The book kept at `dir/workers-uids` (read now; a missing file is an
    /// empty book, lines outside the range are dropped).
    pub fn open(range: RangeInclusive<u32>, dir: PathBuf) -> Self {
        let file = dir.join(FILE);
        let given = std::fs::read_to_string(&file)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| {
                let (group, uid) = line.split_once(' ')?;
                let uid: u32 = uid.parse().ok()?;
                range.contains(&uid).then(|| (group.to_owned(), uid))
            })
            .collect();
        Self {
            range,
            file,
            given: Mutex::new(given),
        }
    }

    /// The uid of `group`, given now (and recorded durably) if it has none.
    pub fn uid_of(&self, group: &str) -> Result<u32, UidError> {
        let mut given = self.given.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(&uid) = given.get(group) {
            return Ok(uid);
        }
        let taken: std::collections::BTreeSet<u32> = given.values().copied().collect();
        let uid = self
            .range
            .clone()
            .find(|uid| !taken.contains(uid) && crate::sys::user::lookup(&uid.to_string()).ok().flatten().is_none())
            .ok_or_else(|| UidError::Exhausted {
                first: *self.range.start(),
                last: *self.range.end(),
                file: self.file.clone(),
            })?;
        given.insert(group.to_owned(), uid);
        let text: String = given.iter().map(|(g, u)| format!("{g} {u}\n")).collect();
        let dir = self.file.parent().unwrap_or(std::path::Path::new("."));
        if let Err(source) = crate::sys::fs::write_atomic(dir, FILE, text.as_bytes()) {
            given.remove(group);
            return Err(UidError::Record {
                group: group.to_owned(),
                file: self.file.clone(),
                source,
            });
        }
        Ok(uid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_must_be_unprivileged_and_ordered() {
        assert_eq!(parse_range("100-102").unwrap(), 100..=102);
        for bad in ["", "5", "0-10", "10-5", "a-b", "1-99999999"] {
            assert!(parse_range(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn groups_keep_their_uid_across_restarts_and_never_share_one() {
        let dir = tempfile::tempdir().unwrap();
        let range = 3_900_000_000..=3_900_000_001;
        let book = UidBook::open(range.clone(), dir.path().to_owned());
        let a = book.uid_of("a").unwrap();
        let b = book.uid_of("b").unwrap();
        assert_ne!(a, b);
        assert_eq!(book.uid_of("a").unwrap(), a);
        let err = book.uid_of("c").unwrap_err().to_string();
        assert!(err.contains("widen the range"), "{err}");
        let reopened = UidBook::open(range, dir.path().to_owned());
        assert_eq!((reopened.uid_of("b").unwrap(), reopened.uid_of("a").unwrap()), (b, a));
    }
}
