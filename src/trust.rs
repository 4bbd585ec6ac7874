//! Whether a file audetect acts on (its config, its rules) can be changed by
//! someone other than root or audetect's own user: such a file is refused.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Why `path` may not be trusted, or None when only root (or the user
/// audetect runs as) can change it. The file itself and, for a rule tree,
/// each directory read are checked, not every directory above them: a
/// group-writable /etc is the host's problem, not one audetect can fix.
pub fn untrusted(path: &Path, meta: &std::fs::Metadata) -> Option<String> {
    use std::os::unix::fs::FileTypeExt;
    // A device reads what its driver gives, whoever writes it: `-c
    // /dev/null` (the defaults) is root's 0666 device.
    let kind = meta.file_type();
    if kind.is_char_device() || kind.is_block_device() {
        return None;
    }
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    let mode = meta.mode() & 0o7777;
    let what = if meta.is_dir() { "directory" } else { "file" };
    if meta.uid() != 0 && meta.uid() != euid {
        return Some(format!(
            "{} is a {what} owned by uid {}, not root{}: whoever owns it could change what audetect does (chown root)",
            path.display(),
            meta.uid(),
            if euid == 0 { String::new() } else { format!(" or uid {euid}") },
        ));
    }
    if mode & 0o022 != 0 {
        let who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
            (true, true) => "its group and everyone",
            (true, false) => "its group",
            _ => "everyone",
        };
        return Some(format!(
            "{} is a {what} that {who} can write (mode {mode:04o}): anyone who can write it could change what audetect does (chmod go-w)",
            path.display()
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_file_others_can_write_is_untrusted_and_says_how_to_fix_it() {
        let dir = std::env::temp_dir().join(format!("audetect-trust-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("audetect.toml");
        std::fs::write(&f, "").unwrap();
        for (mode, verdict) in [
            (0o644, None),
            (0o600, None),
            (0o664, Some("its group can write (mode 0664)")),
            (0o646, Some("everyone can write (mode 0646)")),
            (0o666, Some("its group and everyone can write (mode 0666)")),
        ] {
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
            let why = untrusted(&f, &std::fs::metadata(&f).unwrap());
            match verdict {
                None => assert_eq!(why, None, "{mode:o}"),
                Some(text) => {
                    let why = why.unwrap_or_default();
                    assert!(why.contains(text) && why.contains("chmod go-w"), "{why}");
                }
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
        let null = Path::new("/dev/null");
        assert_eq!(untrusted(null, &std::fs::metadata(null).unwrap()), None);
    }
}
