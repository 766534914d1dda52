//! The manifest of a multi-part AOF (`appendonly.aof.manifest`), as Redis
//! 7.0 reads and writes it.
//!
//! One line per file: `file <name> seq <n> type <b|h|i>`; `b` is the base
//! (one at most, first), `i` the incremental files in order, `h` history
//! files waiting for deletion (ignored when loading). The manifest is the
//! single source of truth for which files make up the data set: it is
//! always replaced atomically ([`Manifest::store`]: temporary file, fsync,
//! rename, fsync of the directory), and files are deleted only once a
//! manifest that no longer names them is on disk.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

/// What a manifest line says a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The base (`type b`).
    Base,
    /// An incremental file (`type i`).
    Incr,
    /// A history file (`type h`): no longer part of the data.
    History,
}

/// One file of the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// File name inside the AOF directory.
    pub name: String,
    /// Sequence number.
    pub seq: u64,
    /// Base, incremental or history.
    pub kind: Kind,
}

/// The parsed manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// The base file, if any.
    pub base: Option<Entry>,
    /// Incremental files, in load order.
    pub incrs: Vec<Entry>,
    /// History files (to delete).
    pub history: Vec<Entry>,
}

impl Manifest {
    /// Parses manifest text; errors name the line.
    pub fn parse(text: &str) -> Result<Manifest, String> {
        let mut m = Manifest::default();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            if !words.len().is_multiple_of(2) {
                return Err(format!("Invalid AOF manifest file format (line {})", i + 1));
            }
            let (mut name, mut seq, mut kind) = (None, None, None);
            for kv in words.chunks(2) {
                match kv[0] {
                    "file" => name = Some(kv[1].trim_matches('"').to_string()),
                    "seq" => seq = kv[1].parse::<u64>().ok(),
                    "type" => {
                        kind = match kv[1] {
                            "b" => Some(Kind::Base),
                            "i" => Some(Kind::Incr),
                            "h" => Some(Kind::History),
                            _ => None,
                        }
                    }
                    _ => {}
                }
            }
            let (Some(name), Some(seq), Some(kind)) = (name, seq, kind) else {
                return Err(format!("Invalid AOF manifest file format (line {})", i + 1));
            };
            if name.contains('/') || name.is_empty() {
                return Err(format!(
                    "Invalid AOF file name in manifest (line {})",
                    i + 1
                ));
            }
            let e = Entry { name, seq, kind };
            match kind {
                Kind::Base => {
                    if m.base.is_some() {
                        return Err("Found duplicate base file information".into());
                    }
                    m.base = Some(e);
                }
                Kind::Incr => {
                    if m.incrs.last().is_some_and(|l| l.seq >= e.seq) {
                        return Err("Found a non-monotonic sequence number".into());
                    }
                    m.incrs.push(e)
                }
                Kind::History => m.history.push(e),
            }
        }
        if m.base.is_none() && m.incrs.is_empty() {
            return Err("Found an empty AOF manifest".into());
        }
        Ok(m)
    }

    /// The manifest text, as Redis writes it.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let all = self
            .base
            .iter()
            .chain(self.history.iter())
            .chain(self.incrs.iter());
        for e in all {
            let t = match e.kind {
                Kind::Base => "b",
                Kind::Incr => "i",
                Kind::History => "h",
            };
            s.push_str(&format!("file {} seq {} type {}\n", e.name, e.seq, t));
        }
        s
    }

    /// The files to load, in order: the base then the incremental files.
    pub fn load_order(&self) -> Vec<&Entry> {
        self.base.iter().chain(self.incrs.iter()).collect()
    }

    /// Replaces `dir/name` with this manifest atomically and durably.
    pub fn store(&self, dir: &Path, name: &str) -> io::Result<()> {
        let tmp = dir.join(format!("temp-{name}"));
        {
            let mut f = File::create(&tmp)?;
            f.write_all(self.to_text().as_bytes())?;
            f.sync_all()?;
        }
        fs::rename(&tmp, dir.join(name))?;
        sync_dir(dir)
    }
}

/// fsyncs a directory, so that renames and creations in it are durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// `<appendfilename>.<seq>.base.aof`.
pub fn base_name(prefix: &str, seq: u64) -> String {
    format!("{prefix}.{seq}.base.aof")
}

/// `<appendfilename>.<seq>.base.rdb`: a base written as an RDB file
/// (`aof-use-rdb-preamble yes`).
pub fn rdb_base_name(prefix: &str, seq: u64) -> String {
    format!("{prefix}.{seq}.base.rdb")
}

/// `<appendfilename>.<seq>.incr.aof`.
pub fn incr_name(prefix: &str, seq: u64) -> String {
    format!("{prefix}.{seq}.incr.aof")
}

/// `<appendfilename>.manifest`.
pub fn manifest_name(prefix: &str) -> String {
    format!("{prefix}.manifest")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_redis_text() {
        let text = "file appendonly.aof.2.base.aof seq 2 type b\nfile appendonly.aof.2.incr.aof seq 2 type i\n";
        let m = Manifest::parse(text).unwrap();
        assert_eq!(m.base.as_ref().unwrap().seq, 2);
        assert_eq!(m.incrs.len(), 1);
        assert_eq!(m.to_text(), text);
    }

    #[test]
    fn rejects_garbage() {
        assert!(Manifest::parse("file x seq\n").is_err());
        assert!(Manifest::parse("").is_err());
        assert!(Manifest::parse("file ../x seq 1 type b\n").is_err());
    }
}
