//! `herald check-aof [--fix] DIR`: inspects (and repairs) an AOF directory
//! like `redis-check-aof`.
//!
//! DIR is the AOF directory (holding the manifest), the data directory
//! holding `appendonlydir/`, or the manifest file itself. Every file of the
//! manifest is scanned with the loader's parser ([`super::load::scan`]).
//! A file that ends in a cut record (or an open MULTI) is reported with the
//! offset of the last valid byte; `--fix` truncates it there if it is the
//! last file (as the loader would), a format error in the middle of the last
//! file is also truncated there (losing what follows, as redis-check-aof
//! does after asking), and a problem in any other file is refused.

use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::load::{scan, RecordError};
use super::manifest::Manifest;

/// Finds the manifest for DIR (see the module header).
fn locate(arg: &Path) -> Result<(PathBuf, PathBuf), String> {
    if arg.is_file() {
        let dir = arg.parent().map(Path::to_path_buf).unwrap_or_default();
        return Ok((dir, arg.to_path_buf()));
    }
    for d in [arg.to_path_buf(), arg.join("appendonlydir")] {
        if let Ok(rd) = fs::read_dir(&d) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.ends_with(".manifest") && !name.starts_with("temp-") {
                    return Ok((d.clone(), e.path()));
                }
            }
        }
    }
    Err(format!("no AOF manifest found in {}", arg.display()))
}

/// Runs the subcommand; returns the process exit code.
pub fn main(args: &[String]) -> i32 {
    let fix = args.iter().any(|a| a == "--fix");
    let paths: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let [path] = paths.as_slice() else {
        eprintln!("Usage: herald check-aof [--fix] <appendonlydir|data dir|manifest>");
        return 1;
    };
    match check(Path::new(path.as_str()), fix) {
        Ok(msg) => {
            println!("{msg}");
            0
        }
        Err(msg) => {
            println!("{msg}");
            1
        }
    }
}

/// Checks (and with `fix` repairs) the AOF at `path`; the text to print.
pub fn check(path: &Path, fix: bool) -> Result<String, String> {
    let (dir, mpath) = locate(path)?;
    let text =
        fs::read_to_string(&mpath).map_err(|e| format!("Cannot read {}: {e}", mpath.display()))?;
    let m = Manifest::parse(&text).map_err(|e| format!("{e} in {}", mpath.display()))?;
    let files = m.load_order();
    let mut out = "Start checking Multi Part AOF\n".to_string();
    for (i, e) in files.iter().enumerate() {
        let last = i + 1 == files.len();
        let p = dir.join(&e.name);
        let data = match fs::read(&p) {
            Ok(d) => Bytes::from(d),
            Err(err) => return Err(format!("{out}Cannot read {}: {err}", e.name)),
        };
        if data.starts_with(b"REDIS") {
            return Err(format!(
                "{out}{} has an RDB preamble: not checked by herald",
                e.name
            ));
        }
        let s = scan(&data);
        let Some((at, problem)) = s.problem else {
            out.push_str(&format!(
                "AOF {} is valid ({} commands, {} bytes)\n",
                e.name, s.records, s.size
            ));
            continue;
        };
        let what = match problem {
            RecordError::Truncated => "truncated record or unfinished MULTI".to_string(),
            RecordError::Bad(why) => format!("format error: {why}"),
        };
        out.push_str(&format!(
            "AOF {} analyzed: size={}, ok_up_to={}, ok_up_to_line=?, diff={}\n{what} at offset {at}\n",
            e.name,
            s.size,
            s.valid,
            s.size - s.valid
        ));
        if !last {
            return Err(format!(
                "{out}AOF {} is not the last file: cannot be truncated without losing the files after it",
                e.name
            ));
        }
        if !fix {
            return Err(format!(
                "{out}AOF {} is not valid. Use the --fix option to try fixing it.",
                e.name
            ));
        }
        let r = fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .and_then(|f| f.set_len(s.valid as u64).and_then(|_| f.sync_all()));
        return match r {
            Ok(()) => Ok(format!("{out}Successfully truncated AOF {}", e.name)),
            Err(err) => Err(format!("{out}Failed to truncate AOF {}: {err}", e.name)),
        };
    }
    out.push_str("All AOF files and manifest are valid");
    Ok(out)
}
