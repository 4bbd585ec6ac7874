//! Detection rules from the file system: the rule files and directory trees
//! the config names, read here and compiled by audetect-engine's `rulefile`
//! (re-exported here, with the built-in rule and the rule model).

use std::path::{Path, PathBuf};

pub use audetect_engine::rulefile::*;

use crate::eql::Schema;

/// Where rules come from when the config names no `rule_paths`; a host
/// may not have it.
pub const DEFAULT_RULE_DIR: &str = "/etc/audetect/rules.d";

/// Deepest directory nesting read under a rule path: detection-rules' own
/// tree is two levels deep; the bound stops a symlink loop.
const MAX_DEPTH: usize = 16;

/// Loads the rules in force: the built-in ones (if enabled), then every
/// `*.toml` in `paths` (files, or directory trees read in path order); a
/// file rule with a built-in rule's id replaces it. Two files with one id is
/// an error, and so is a file that is not TOML, a rule that lacks a required
/// key or whose query does not parse. A well-formed rule audetect cannot run
/// (another rule type or OS, a field, category, function or event kind it
/// does not supply, maturity "deprecated") is set aside in
/// [`RuleSet::skipped`] with the reason, and so is a TOML file in a directory
/// that holds no `[rule]` (detection-rules' tree has such files). A missing
/// default directory (/etc/audetect/rules.d, which a host may not have) is
/// fine; any other missing path is an error.
pub fn load(builtin: bool, paths: &[PathBuf], schema: &Schema) -> Result<RuleSet, RuleError> {
    // Lazily, path by path and file by file, so that the first error in
    // path order is the one reported, as when reading and compiling were one.
    let digests = std::cell::RefCell::new(Vec::new());
    let files = paths.iter().flat_map(|path| {
        let missing_ok = path.as_path() == Path::new(DEFAULT_RULE_DIR);
        let (found, error) = match rule_files(path, missing_ok) {
            Ok(found) => (found, None),
            Err(e) => (Vec::new(), Some(Err(e))),
        };
        error
            .into_iter()
            .chain(found.into_iter().map(|(file, found_in_dir)| {
                let text = read(file, found_in_dir)?;
                digests
                    .borrow_mut()
                    .push((text.path.clone(), sha256_hex(&text.text)));
                Ok(text)
            }))
    });
    let mut set = compile(builtin, files, schema)?;
    set.files = digests.into_inner();
    Ok(set)
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One SHA-256 over the rule files read (each path and its text's hash, in
/// order): a rule set that changed between two starts has another one.
pub fn digest(set: &RuleSet) -> String {
    let mut all = String::new();
    for (path, sha) in &set.files {
        all.push_str(&format!("{}\0{sha}\n", path.display()));
    }
    sha256_hex(&all)
}

fn read(path: PathBuf, found_in_dir: bool) -> Result<RuleText, RuleError> {
    trusted(&path)?;
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(RuleText {
            path,
            text,
            found_in_dir,
        }),
        Err(source) => Err(RuleError::Read { path, source }),
    }
}

/// The rule files under `path`, in path order, each with whether it was
/// found by reading a directory (rather than named itself).
fn rule_files(path: &Path, missing_ok: bool) -> Result<Vec<(PathBuf, bool)>, RuleError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && missing_ok => return Ok(vec![]),
        Err(source) => {
            return Err(RuleError::Read {
                path: path.to_owned(),
                source,
            })
        }
    };
    if !meta.is_dir() {
        return Ok(vec![(path.to_owned(), false)]);
    }
    trusted(path)?;
    let mut files = Vec::new();
    walk(path, 0, &mut files)?;
    files.sort();
    Ok(files.into_iter().map(|f| (f, true)).collect())
}

fn walk(dir: &Path, depth: usize, files: &mut Vec<PathBuf>) -> Result<(), RuleError> {
    let read_err = |source| RuleError::Read {
        path: dir.to_owned(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        let Ok(entry) = entry else { continue };
        let p = entry.path();
        // Hidden entries (.git, editors' swap files) are not rules.
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if p.is_dir() {
            trusted(&p)?;
            if depth + 1 < MAX_DEPTH {
                walk(&p, depth + 1, files)?;
            }
        } else if p.extension().is_some_and(|x| x == "toml") && p.is_file() {
            files.push(p);
        }
    }
    Ok(())
}

/// A rule file or directory that only root (or audetect's user) can change:
/// a rule audetect loads decides what it reports, and a rule with the
/// built-in rule's id replaces it.
fn trusted(path: &Path) -> Result<(), RuleError> {
    let meta = std::fs::metadata(path).map_err(|source| RuleError::Read {
        path: path.to_owned(),
        source,
    })?;
    match crate::trust::untrusted(path, &meta) {
        Some(why) => Err(RuleError::Untrusted(why)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;
