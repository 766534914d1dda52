//! `herald check-aof [--fix [--yes]] DIR`: inspects (and repairs) an AOF directory
//! like `redis-check-aof`.
//!
//! DIR is the AOF directory (holding the manifest), the data directory
//! holding `appendonlydir/`, or the manifest file itself. Every file of the
//! manifest is scanned with the loader's parser ([`super::load::scan`]).
//! A file that ends in a cut record (or an open MULTI) is reported with the
//! offset of the last valid byte; `--fix` truncates it there if it is the
//! last file (as the loader would), a format error in the middle of the last
//! file is also truncated there (losing what follows), and a problem in any
//! other file is refused. Like redis-check-aof, `--fix` first says how much
//! it would cut and asks "Continue? [y/N]: "; `--yes` answers for scripts.

use std::fs;
use std::io::{BufRead, Write};
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
///
/// As redis-check-aof, `--fix` asks before truncating ("Continue? [y/N]: "
/// on standard output, one answer line read from standard input; anything
/// but `y` / `Y`, or no input, aborts with exit code 1). `--yes` answers
/// yes for scripts.
pub fn main(args: &[String]) -> i32 {
    let fix = args.iter().any(|a| a == "--fix");
    let yes = args.iter().any(|a| a == "--yes");
    let paths: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let unknown = args
        .iter()
        .any(|a| a.starts_with("--") && a != "--fix" && a != "--yes");
    let ([path], false) = (paths.as_slice(), unknown) else {
        eprintln!("Usage: herald check-aof [--fix [--yes]] <appendonlydir|data dir|manifest>");
        return 1;
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let stdin = std::io::stdin();
    let mut answer = || {
        if yes {
            return true;
        }
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .is_ok_and(|_| line.starts_with(['y', 'Y']))
    };
    // The prompt is flushed before the answer is read (see `run`).
    i32::from(!run(Path::new(path.as_str()), fix, &mut out, &mut answer))
}

/// Checks (and with `fix` repairs) the AOF at `path` without asking (for
/// tests and embedding): the text printed, `Err` for a failure.
pub fn check(path: &Path, fix: bool) -> Result<String, String> {
    let mut out = Vec::new();
    let ok = run(path, fix, &mut out, &mut || true);
    let text = String::from_utf8_lossy(&out).trim_end().to_string();
    if ok {
        Ok(text)
    } else {
        Err(text)
    }
}

/// Checks `path`, writing the report to `out`; with `fix`, truncates the
/// last file at its last valid byte if `confirm` (asked after the
/// "Continue? [y/N]: " prompt) says yes. True on success.
pub fn run(path: &Path, fix: bool, out: &mut dyn Write, confirm: &mut dyn FnMut() -> bool) -> bool {
    match check_files(path, fix, out, confirm) {
        Ok(()) => true,
        Err(msg) => {
            let _ = writeln!(out, "{msg}");
            false
        }
    }
}

fn check_files(
    path: &Path,
    fix: bool,
    out: &mut dyn Write,
    confirm: &mut dyn FnMut() -> bool,
) -> Result<(), String> {
    let say = |out: &mut dyn Write, text: &str| {
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    };
    let (dir, mpath) = locate(path)?;
    let text =
        fs::read_to_string(&mpath).map_err(|e| format!("Cannot read {}: {e}", mpath.display()))?;
    let m = Manifest::parse(&text).map_err(|e| format!("{e} in {}", mpath.display()))?;
    let files = m.load_order();
    say(out, "Start checking Multi Part AOF\n");
    for (i, e) in files.iter().enumerate() {
        let last = i + 1 == files.len();
        let p = dir.join(&e.name);
        let data = match fs::read(&p) {
            Ok(d) => Bytes::from(d),
            Err(err) => return Err(format!("Cannot read {}: {err}", e.name)),
        };
        // Offsets below count from the file's start, the preamble included.
        let mut skip = 0;
        let data = if super::rdb::file::is_rdb(&data) {
            let (keys, end) = super::check_rdb::check(&data)
                .map_err(|err| format!("RDB preamble of {} is invalid: {err}", e.name))?;
            say(
                out,
                &format!(
                    "RDB preamble of {} is OK ({keys} keys), proceeding with AOF tail...\n",
                    e.name
                ),
            );
            skip = end;
            data.slice(end..)
        } else {
            data
        };
        let mut s = scan(&data);
        s.valid += skip;
        s.size += skip;
        let Some((at, problem)) = s.problem.map(|(at, p)| (at + skip, p)) else {
            say(
                out,
                &format!(
                    "AOF {} is valid ({} commands, {} bytes)\n",
                    e.name, s.records, s.size
                ),
            );
            continue;
        };
        let what = match problem {
            RecordError::Truncated => "truncated record or unfinished MULTI".to_string(),
            RecordError::Bad(why) => format!("format error: {why}"),
        };
        say(
            out,
            &format!(
                "AOF {} analyzed: size={}, ok_up_to={}, ok_up_to_line=?, diff={}\n{what} at offset {at}\n",
                e.name,
                s.size,
                s.valid,
                s.size - s.valid
            ),
        );
        if !fix {
            return Err(format!(
                "AOF {} is not valid. Use the --fix option to try fixing it.",
                e.name
            ));
        }
        if !last {
            return Err(format!(
                "Failed to truncate AOF {} because it is not the last file",
                e.name
            ));
        }
        say(
            out,
            &format!(
                "This will shrink the AOF {} from {} bytes, with {} bytes, to {} bytes\nContinue? [y/N]: ",
                e.name,
                s.size,
                s.size - s.valid,
                s.valid
            ),
        );
        if !confirm() {
            return Err("Aborting...".to_string());
        }
        let r = fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .and_then(|f| f.set_len(s.valid as u64).and_then(|_| f.sync_all()));
        return match r {
            Ok(()) => {
                say(out, &format!("Successfully truncated AOF {}\n", e.name));
                Ok(())
            }
            Err(err) => Err(format!("Failed to truncate AOF {}: {err}", e.name)),
        };
    }
    say(out, "All AOF files and manifest are valid\n");
    Ok(())
}
