//! Safe, streaming walks over the files of a repository or paper: tar (plain, `.gz`, `.zst`,
//! `.bz2`), zip, or a checked-out folder.
//!
//! Nothing is ever extracted to disk. Member names are normalised to relative `/`-separated
//! paths; members with absolute paths, `..` components, symlinks, hard links or device files
//! are reported as skipped and never read or followed. A member body is read into memory only
//! when the caller asks for it and only up to `max_member_bytes`; the total number of bytes
//! decompressed from one archive is capped by `max_total_bytes`, so a decompression bomb ends
//! the walk with an `archive_too_large` error instead of filling memory or disk.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::doc::{open_decompressed, RecordError, RecordResult};

/// Size caps applied while walking one archive or folder.
#[derive(Debug, Clone, Copy)]
pub struct WalkLimits {
    /// A member larger than this is reported with [`MemberBody::TooLarge`] and not read.
    pub max_member_bytes: u64,
    /// Total decompressed bytes that may be streamed from one archive (bodies and headers).
    pub max_total_bytes: u64,
}

/// The content of a member, as far as it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberBody {
    /// The whole body.
    Bytes(Vec<u8>),
    /// Not read: the member is larger than `max_member_bytes` (its size is given).
    TooLarge(u64),
    /// Not read: the caller did not want it.
    NotRead,
}

/// One regular file of the archive or folder.
#[derive(Debug, Clone)]
pub struct Member {
    /// Normalised relative path (`/`-separated, no `.`/`..`, no leading `/`).
    pub path: String,
    /// Size as recorded in the archive (or on disk).
    pub size: u64,
    /// Where it is: offset of its data in the decompressed tar stream, index in a zip, 0 in a
    /// folder.
    pub offset: u64,
    /// The body, if asked for.
    pub body: MemberBody,
}

/// What a walk reports, in archive order.
#[derive(Debug, Clone)]
pub enum WalkEvent {
    /// A regular file.
    File(Member),
    /// A member that was not read because it is unsafe or not a regular file.
    Skipped {
        /// The raw name as stored (lossy UTF-8).
        name: String,
        /// `unsafe_path`, `link` or `special_file`.
        reason: &'static str,
        /// Where it is, as in [`Member::offset`].
        offset: u64,
    },
}

/// The record of a member a walk skipped (see [`WalkEvent::Skipped`]); `owner` names the
/// archive or repository in the message.
pub fn skipped_member(owner: &str, name: &str, reason: &'static str, offset: u64) -> RecordError {
    RecordError::record(
        offset,
        reason,
        format!("{owner}: member `{name}` not read ({reason})"),
    )
}

/// The kinds of inputs a walk understands, chosen from the file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveKind {
    /// A tar stream, possibly compressed (`.tar`, `.tar.gz`, `.tgz`, `.tar.zst`, `.tar.bz2`).
    Tar,
    /// A zip file.
    Zip,
    /// A folder on disk (a checked-out repository).
    Folder,
}

impl ArchiveKind {
    /// The kind of `path` by its name (folders by metadata); `None` for other files.
    pub fn of(path: &Path) -> Option<ArchiveKind> {
        if path.is_dir() {
            return Some(ArchiveKind::Folder);
        }
        let name = crate::doc::file_name(path).to_ascii_lowercase();
        if name.ends_with(".zip") {
            Some(ArchiveKind::Zip)
        } else if name.ends_with(".tar")
            || name.ends_with(".tar.gz")
            || name.ends_with(".tgz")
            || name.ends_with(".tar.zst")
            || name.ends_with(".tar.bz2")
        {
            Some(ArchiveKind::Tar)
        } else {
            None
        }
    }
}

/// Turns a stored member name into a safe relative path, or `None` if it is absolute,
/// climbs out with `..`, contains NUL or a Windows drive/UNC prefix, or is empty.
pub fn safe_member_path(raw: &[u8]) -> Option<String> {
    let name = std::str::from_utf8(raw).ok()?;
    if name.starts_with('/') || name.starts_with('\\') || name.contains('\0') {
        return None;
    }
    let bytes = name.as_bytes();
    if bytes.len() >= 2 && bytes[1] == b':' {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in name.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => return None,
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return None;
    }
    Some(parts.join("/"))
}

/// Counts the bytes read through it into a shared counter.
struct CountingReader<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

fn too_large(offset: u64, limit: u64) -> RecordError {
    RecordError::fatal(
        offset,
        "archive_too_large",
        format!("more than {limit} decompressed bytes; rest of the archive skipped"),
    )
}

/// Reads at most `limit` bytes of `r` (the rest stays unread): `TooLarge` when more remain.
fn read_capped(r: &mut dyn Read, size: u64, limit: u64) -> std::io::Result<MemberBody> {
    if size > limit {
        return Ok(MemberBody::TooLarge(size));
    }
    let mut buf = Vec::with_capacity(size as usize);
    r.take(limit + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > limit {
        return Ok(MemberBody::TooLarge(buf.len() as u64));
    }
    Ok(MemberBody::Bytes(buf))
}

/// Walks `path` (tar, zip or folder), calling `want(path, size)` to decide whether a file's
/// body is read and `visit` for every event; `visit` returns `false` to stop early.
/// Errors that end the walk (I/O, corrupt archive, size cap) are returned as fatal records.
pub fn walk(
    path: &Path,
    kind: &ArchiveKind,
    limits: WalkLimits,
    want: &mut dyn FnMut(&str, u64) -> bool,
    visit: &mut dyn FnMut(WalkEvent) -> bool,
) -> Result<(), RecordError> {
    match kind {
        ArchiveKind::Tar => {
            let input = open_decompressed(path)
                .map_err(|e| RecordError::fatal(0, "read_error", format!("{e:#}")))?;
            walk_tar(input, limits, want, visit)
        }
        ArchiveKind::Zip => walk_zip(path, limits, want, visit),
        ArchiveKind::Folder => walk_folder(path, limits, want, visit),
    }
}

/// Walks a tar stream (already decompressed).
pub fn walk_tar(
    input: impl Read,
    limits: WalkLimits,
    want: &mut dyn FnMut(&str, u64) -> bool,
    visit: &mut dyn FnMut(WalkEvent) -> bool,
) -> Result<(), RecordError> {
    let count = Arc::new(AtomicU64::new(0));
    let counted = CountingReader {
        inner: input,
        count: count.clone(),
    };
    let mut archive = tar::Archive::new(counted);
    let entries = archive
        .entries()
        .map_err(|e| RecordError::fatal(0, "bad_archive", format!("not a tar stream: {e}")))?;
    for entry in entries {
        let offset = count.load(Ordering::Relaxed);
        if offset > limits.max_total_bytes {
            return Err(too_large(offset, limits.max_total_bytes));
        }
        let mut entry = entry.map_err(|e| {
            RecordError::fatal(offset, "bad_archive", format!("cannot read tar entry: {e}"))
        })?;
        let kind = entry.header().entry_type();
        let raw = entry.path_bytes().into_owned();
        let event = if kind.is_file() {
            match safe_member_path(&raw) {
                None => WalkEvent::Skipped {
                    name: String::from_utf8_lossy(&raw).into_owned(),
                    reason: "unsafe_path",
                    offset,
                },
                Some(p) => {
                    let size = entry.size();
                    if size > limits.max_total_bytes.saturating_sub(offset) {
                        return Err(too_large(offset, limits.max_total_bytes));
                    }
                    let body = if want(&p, size) {
                        read_capped(&mut entry, size, limits.max_member_bytes).map_err(|e| {
                            RecordError::fatal(
                                offset,
                                "bad_archive",
                                format!("cannot read {p}: {e}"),
                            )
                        })?
                    } else {
                        MemberBody::NotRead
                    };
                    WalkEvent::File(Member {
                        path: p,
                        size,
                        offset,
                        body,
                    })
                }
            }
        } else if kind.is_symlink() || kind.is_hard_link() {
            WalkEvent::Skipped {
                name: String::from_utf8_lossy(&raw).into_owned(),
                reason: "link",
                offset,
            }
        } else if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
            WalkEvent::Skipped {
                name: String::from_utf8_lossy(&raw).into_owned(),
                reason: "special_file",
                offset,
            }
        } else {
            // Directories, pax and GNU long-name headers: nothing to read.
            continue;
        };
        if !visit(event) {
            return Ok(());
        }
    }
    Ok(())
}

fn walk_zip(
    path: &Path,
    limits: WalkLimits,
    want: &mut dyn FnMut(&str, u64) -> bool,
    visit: &mut dyn FnMut(WalkEvent) -> bool,
) -> Result<(), RecordError> {
    let file = File::open(path).map_err(|e| {
        RecordError::fatal(
            0,
            "read_error",
            format!("cannot open {}: {e}", path.display()),
        )
    })?;
    let mut zip = zip::ZipArchive::new(BufReader::new(file))
        .map_err(|e| RecordError::fatal(0, "bad_archive", format!("not a zip file: {e}")))?;
    let mut total = 0u64;
    for i in 0..zip.len() {
        let mut member = zip.by_index(i).map_err(|e| {
            RecordError::fatal(total, "bad_archive", format!("zip member {i}: {e}"))
        })?;
        let raw = member.name_raw().to_vec();
        let mode = member.unix_mode().unwrap_or(0);
        let event = if member.is_dir() {
            continue;
        } else if mode & 0o170000 == 0o120000 {
            WalkEvent::Skipped {
                name: String::from_utf8_lossy(&raw).into_owned(),
                reason: "link",
                offset: i as u64,
            }
        } else if !member.is_file() {
            WalkEvent::Skipped {
                name: String::from_utf8_lossy(&raw).into_owned(),
                reason: "special_file",
                offset: i as u64,
            }
        } else {
            match safe_member_path(&raw) {
                None => WalkEvent::Skipped {
                    name: String::from_utf8_lossy(&raw).into_owned(),
                    reason: "unsafe_path",
                    offset: i as u64,
                },
                Some(p) => {
                    let size = member.size();
                    let body = if want(&p, size) {
                        let left = limits.max_total_bytes.saturating_sub(total);
                        if size > left {
                            return Err(too_large(total, limits.max_total_bytes));
                        }
                        let body = read_capped(&mut member, size, limits.max_member_bytes)
                            .map_err(|e| {
                                RecordError::fatal(
                                    total,
                                    "bad_archive",
                                    format!("cannot read {p}: {e}"),
                                )
                            })?;
                        if let MemberBody::Bytes(b) = &body {
                            total += b.len() as u64;
                        }
                        body
                    } else {
                        MemberBody::NotRead
                    };
                    WalkEvent::File(Member {
                        path: p,
                        size,
                        offset: i as u64,
                        body,
                    })
                }
            }
        };
        if !visit(event) {
            return Ok(());
        }
    }
    Ok(())
}

fn walk_folder(
    root: &Path,
    limits: WalkLimits,
    want: &mut dyn FnMut(&str, u64) -> bool,
    visit: &mut dyn FnMut(WalkEvent) -> bool,
) -> Result<(), RecordError> {
    let mut total = 0u64;
    let mut stack: Vec<(PathBuf, String)> = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        let mut entries: Vec<_> = match std::fs::read_dir(&dir) {
            Ok(rd) => rd.filter_map(|e| e.ok()).collect(),
            Err(e) => {
                return Err(RecordError::fatal(
                    total,
                    "read_error",
                    format!("cannot list {}: {e}", dir.display()),
                ))
            }
        };
        entries.sort_by_key(|e| e.file_name());
        let mut subdirs = Vec::new();
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == ".git" {
                continue;
            }
            let rel_path = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            // symlink_metadata: a symlink is reported, never followed.
            let Ok(md) = entry.path().symlink_metadata() else {
                continue;
            };
            let event = if md.file_type().is_symlink() {
                WalkEvent::Skipped {
                    name: rel_path,
                    reason: "link",
                    offset: 0,
                }
            } else if md.is_dir() {
                subdirs.push((entry.path(), rel_path));
                continue;
            } else if !md.is_file() {
                WalkEvent::Skipped {
                    name: rel_path,
                    reason: "special_file",
                    offset: 0,
                }
            } else {
                let size = md.len();
                let body = if want(&rel_path, size) {
                    if size > limits.max_total_bytes.saturating_sub(total) {
                        return Err(too_large(total, limits.max_total_bytes));
                    }
                    let read = File::open(entry.path())
                        .and_then(|mut f| read_capped(&mut f, size, limits.max_member_bytes));
                    match read {
                        Ok(b) => {
                            if let MemberBody::Bytes(v) = &b {
                                total += v.len() as u64;
                            }
                            b
                        }
                        Err(_) => MemberBody::NotRead,
                    }
                } else {
                    MemberBody::NotRead
                };
                WalkEvent::File(Member {
                    path: rel_path,
                    size,
                    offset: 0,
                    body,
                })
            };
            if !visit(event) {
                return Ok(());
            }
        }
        // Depth-first in name order: push in reverse so the smallest name is walked first.
        subdirs.reverse();
        stack.extend(subdirs);
    }
    Ok(())
}

/// Runs `produce` on a helper thread and streams what it sends: memory stays bounded by the
/// channel, and the producer stops as soon as the consumer drops the stream. A panic in the
/// producer ends the stream with a fatal `reader_panic` record.
pub fn stream_from_thread(
    produce: impl FnOnce(&mut dyn FnMut(RecordResult) -> bool) + Send + 'static,
) -> crate::sources::Records {
    let (tx, rx) = std::sync::mpsc::sync_channel::<RecordResult>(64);
    std::thread::spawn(move || {
        let mut send = |r: RecordResult| tx.send(r).is_ok();
        let run = std::panic::AssertUnwindSafe(|| produce(&mut send));
        if std::panic::catch_unwind(run).is_err() {
            // A bug must not look like a clean end of input.
            let _ = tx.send(Err(RecordError::fatal(
                0,
                "reader_panic",
                "the reader stopped on an internal error",
            )));
        }
    });
    Box::new(rx.into_iter())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_member_names_are_rejected() {
        assert_eq!(
            safe_member_path(b"a/./b//c.py").as_deref(),
            Some("a/b/c.py")
        );
        assert_eq!(safe_member_path(b"/etc/passwd"), None);
        assert_eq!(safe_member_path(b"a/../../x"), None);
        assert_eq!(safe_member_path(b"C:\\x"), None);
        assert_eq!(safe_member_path(b"./"), None);
    }

    fn tar_with(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, data) in entries {
            let mut h = tar::Header::new_gnu();
            // Write the raw name so that unsafe names reach the reader unchanged.
            let bytes = name.as_bytes();
            h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            if kind.is_symlink() || kind.is_hard_link() {
                h.set_link_name("/etc/passwd").unwrap();
            }
            h.set_mode(0o644);
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn tar_walk_skips_links_and_escapes_and_caps_sizes() {
        use tar::EntryType as E;
        let data = tar_with(&[
            ("r/ok.py", E::Regular, b"print(1)\n"),
            ("/abs.py", E::Regular, b"x"),
            ("r/../../up.py", E::Regular, b"x"),
            ("r/link", E::Symlink, b""),
            ("r/hard", E::Link, b""),
            ("r/big.py", E::Regular, &[b'a'; 100]),
        ]);
        let limits = WalkLimits {
            max_member_bytes: 50,
            max_total_bytes: 1 << 20,
        };
        let mut events = Vec::new();
        walk_tar(&data[..], limits, &mut |_, _| true, &mut |e| {
            events.push(e);
            true
        })
        .unwrap();
        let files: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                WalkEvent::File(m) => Some((m.path.clone(), m.body.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(
            files,
            vec![
                ("r/ok.py".into(), MemberBody::Bytes(b"print(1)\n".to_vec())),
                ("r/big.py".into(), MemberBody::TooLarge(100)),
            ]
        );
        let skipped: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                WalkEvent::Skipped { reason, .. } => Some(*reason),
                _ => None,
            })
            .collect();
        assert_eq!(skipped, vec!["unsafe_path", "unsafe_path", "link", "link"]);

        let tight = WalkLimits {
            max_member_bytes: 50,
            max_total_bytes: 1000,
        };
        let err = walk_tar(&data[..], tight, &mut |_, _| true, &mut |_| true).unwrap_err();
        assert_eq!(err.reason, "archive_too_large");
    }

    #[test]
    fn folder_walk_does_not_follow_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        std::fs::create_dir_all(repo.join("src")).unwrap();
        std::fs::write(repo.join("src/a.rs"), "fn main() {}\n").unwrap();
        std::fs::write(dir.path().join("secret.txt"), "secret").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(dir.path().join("secret.txt"), repo.join("leak.txt")).unwrap();
        let limits = WalkLimits {
            max_member_bytes: 1 << 20,
            max_total_bytes: 1 << 20,
        };
        let mut seen = Vec::new();
        walk(
            &repo,
            &ArchiveKind::Folder,
            limits,
            &mut |_, _| true,
            &mut |e| {
                seen.push(match e {
                    WalkEvent::File(m) => format!("file {}", m.path),
                    WalkEvent::Skipped { name, reason, .. } => format!("{reason} {name}"),
                });
                true
            },
        )
        .unwrap();
        assert!(seen.contains(&"file src/a.rs".to_string()), "{seen:?}");
        #[cfg(unix)]
        assert!(seen.contains(&"link leak.txt".to_string()), "{seen:?}");
    }
}
