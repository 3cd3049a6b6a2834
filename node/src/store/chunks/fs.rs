//! `FsChunkStore`: shards as files under one directory, normally `<data_dir>/chunks/`.
//!
//! ```text
//! <root>/ab/cd/abcd...(32 hex digits of the blob)-<index, 2 hex digits>.shard
//! <root>/tmp/<same name>.<pid>-<sequence>.tmp     shards being written
//! ```
//!
//! The two-level fan-out by the blob's leading hex digits keeps directories small (blob
//! ids are random). Names are fixed-width lowercase hex, so name order is id order and
//! `list` pages without an index.
//!
//! A write goes to a temporary file; `finish` seals its header, fsyncs it, renames it to
//! its final name and fsyncs that directory (and any fan-out directory it had to create),
//! so after `finish` returns the shard survives a crash, and before it no reader ever sees
//! a partial shard under the final name. Deletes are not fsynced: a shard that comes back
//! after a crash is an orphan for garbage collection, never a wrong answer.
//!
//! All methods block; see the parent module.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::format::{self, Header, PieceSequence, CRC_BYTES, HEADER_BYTES};
use super::{ChunkError, ChunkStore, ShardFormat, ShardId, ShardReader, ShardStat, ShardWriter};

const TMP_DIR: &str = "tmp";
const SHARD_SUFFIX: &str = ".shard";

pub struct FsChunkStore {
    root: PathBuf,
    tmp: PathBuf,
    /// Temporary file names of writers still open, which `sweep_temp` must leave alone.
    active: Arc<Mutex<HashSet<OsString>>>,
    next_temp: AtomicU64,
}

impl FsChunkStore {
    /// Open (creating if needed) a chunk store rooted at `root`.
    pub fn open(root: &Path) -> Result<Self, ChunkError> {
        fs::create_dir_all(root).map_err(|e| ChunkError::io("create directory", root, e))?;
        let tmp = root.join(TMP_DIR);
        fs::create_dir_all(&tmp).map_err(|e| ChunkError::io("create directory", &tmp, e))?;
        Ok(FsChunkStore {
            root: root.to_path_buf(),
            tmp,
            active: Arc::new(Mutex::new(HashSet::new())),
            next_temp: AtomicU64::new(0),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file that holds shard `id` once finished.
    pub fn shard_path(&self, id: ShardId) -> PathBuf {
        let (d1, d2) = fan_out(id.blob);
        self.root.join(d1).join(d2).join(file_name(id))
    }

    fn active(&self) -> std::sync::MutexGuard<'_, HashSet<OsString>> {
        self.active.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn blob_hex(blob: u128) -> String {
    format!("{blob:032x}")
}

fn fan_out(blob: u128) -> (String, String) {
    let hex = blob_hex(blob);
    (hex[0..2].to_string(), hex[2..4].to_string())
}

fn file_name(id: ShardId) -> String {
    format!("{}-{:02x}{SHARD_SUFFIX}", blob_hex(id.blob), id.index)
}

/// The shard a file name stands for, if it is one of ours.
fn parse_file_name(name: &OsStr) -> Option<ShardId> {
    let name = name.to_str()?;
    let stem = name.strip_suffix(SHARD_SUFFIX)?;
    let (blob, index) = stem.split_once('-')?;
    let lower_hex = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if blob.len() != 32 || index.len() != 2 || !lower_hex(blob) || !lower_hex(index) {
        return None;
    }
    Some(ShardId::new(
        u128::from_str_radix(blob, 16).ok()?,
        u8::from_str_radix(index, 16).ok()?,
    ))
}

fn is_fan_out_name(name: &OsStr) -> bool {
    name.to_str().is_some_and(|s| {
        s.len() == 2
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

fn sync_dir(dir: &Path) -> Result<(), ChunkError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| ChunkError::io("fsync directory", dir, e))
}

/// Create `dir` (one level below `parent`) if missing, making the new entry durable.
fn ensure_dir(parent: &Path, dir: &Path) -> Result<(), ChunkError> {
    match fs::create_dir(dir) {
        Ok(()) => sync_dir(parent),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(ChunkError::io("create directory", dir, e)),
    }
}

/// Names in `dir` that `keep` accepts, sorted. A missing directory is empty.
fn sorted_names(dir: &Path, keep: impl Fn(&OsStr) -> bool) -> Result<Vec<OsString>, ChunkError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ChunkError::io("list directory", dir, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| ChunkError::io("list directory", dir, e))?;
        let name = entry.file_name();
        if keep(&name) {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

impl ChunkStore for FsChunkStore {
    fn create(&self, id: ShardId, format: ShardFormat) -> Result<Box<dyn ShardWriter>, ChunkError> {
        let pieces = PieceSequence::new(id, format)?;
        let final_path = self.shard_path(id);
        let final_dir = final_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.root.clone());
        if let Some(level1) = final_dir.parent() {
            ensure_dir(&self.root, level1)?;
            ensure_dir(level1, &final_dir)?;
        }

        let seq = self.next_temp.fetch_add(1, Ordering::Relaxed);
        let tmp_name = OsString::from(format!(
            "{}.{}-{seq}.tmp",
            file_name(id),
            std::process::id()
        ));
        let tmp_path = self.tmp.join(&tmp_name);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp_path)
            .map_err(|e| ChunkError::io("create", &tmp_path, e))?;
        self.active().insert(tmp_name.clone());
        // From here on, dropping the writer removes the temporary file.
        let mut writer = FsShardWriter {
            pieces,
            file: Some(file),
            tmp_path,
            tmp_name,
            final_path,
            final_dir,
            active: self.active.clone(),
        };
        let placeholder = pieces.header(false).encode();
        let tmp_path = writer.tmp_path.clone();
        writer
            .file()?
            .write_all(&placeholder)
            .map_err(|e| ChunkError::io("write", &tmp_path, e))?;
        Ok(Box::new(writer))
    }

    fn open(&self, id: ShardId) -> Result<Box<dyn ShardReader>, ChunkError> {
        let path = self.shard_path(id);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Err(ChunkError::NotFound(id)),
            Err(e) => return Err(ChunkError::io("open", &path, e)),
        };
        let mut head = Vec::with_capacity(HEADER_BYTES);
        (&mut file)
            .take(HEADER_BYTES as u64)
            .read_to_end(&mut head)
            .map_err(|e| ChunkError::io("read", &path, e))?;
        let header = Header::decode(id, &head)?;
        if !header.sealed {
            return Err(ChunkError::corrupt(id, None, "file was never finished"));
        }
        let len = file
            .metadata()
            .map_err(|e| ChunkError::io("stat", &path, e))?
            .len();
        if len != header.file_bytes() {
            return Err(ChunkError::corrupt(
                id,
                None,
                format!(
                    "file is {len} bytes, its header describes {} ({} blocks){}",
                    header.file_bytes(),
                    header.blocks,
                    if len < header.file_bytes() {
                        ": truncated"
                    } else {
                        ""
                    }
                ),
            ));
        }
        Ok(Box::new(FsShardReader { header, file, path }))
    }

    fn delete(&self, id: ShardId) -> Result<bool, ChunkError> {
        let path = self.shard_path(id);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(ChunkError::io("remove", &path, e)),
        }
    }

    fn list(&self, after: Option<ShardId>, limit: usize) -> Result<Vec<ShardId>, ChunkError> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let start = after.map(|id| fan_out(id.blob));
        for d1 in sorted_names(&self.root, is_fan_out_name)? {
            if let Some((a1, _)) = &start {
                if d1.as_os_str() < OsStr::new(a1) {
                    continue;
                }
            }
            let dir1 = self.root.join(&d1);
            for d2 in sorted_names(&dir1, is_fan_out_name)? {
                if let Some((a1, a2)) = &start {
                    if (d1.as_os_str(), d2.as_os_str()) < (OsStr::new(a1), OsStr::new(a2)) {
                        continue;
                    }
                }
                let dir2 = dir1.join(&d2);
                let mut ids: Vec<ShardId> = sorted_names(&dir2, |n| parse_file_name(n).is_some())?
                    .iter()
                    .filter_map(|n| parse_file_name(n))
                    // A file in the wrong fan-out directory is not reachable by its id.
                    .filter(|id| {
                        let (e1, e2) = fan_out(id.blob);
                        d1.as_os_str() == OsStr::new(&e1) && d2.as_os_str() == OsStr::new(&e2)
                    })
                    .filter(|id| after.is_none_or(|a| *id > a))
                    .collect();
                ids.sort();
                for id in ids {
                    out.push(id);
                    if out.len() == limit {
                        return Ok(out);
                    }
                }
            }
        }
        Ok(out)
    }

    fn sweep_temp(&self) -> Result<usize, ChunkError> {
        let names = sorted_names(&self.tmp, |_| true)?;
        let active = self.active().clone();
        let mut removed = 0;
        for name in names.into_iter().filter(|n| !active.contains(n)) {
            let path = self.tmp.join(&name);
            match fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(ChunkError::io("remove", &path, e)),
            }
        }
        Ok(removed)
    }
}

struct FsShardWriter {
    pieces: PieceSequence,
    /// `None` once finished (or if creation failed half way).
    file: Option<File>,
    tmp_path: PathBuf,
    tmp_name: OsString,
    final_path: PathBuf,
    final_dir: PathBuf,
    active: Arc<Mutex<HashSet<OsString>>>,
}

impl FsShardWriter {
    fn file(&mut self) -> Result<&mut File, ChunkError> {
        let id = self.pieces.header(false).id;
        self.file
            .as_mut()
            .ok_or_else(|| ChunkError::invalid(id, "writer already finished"))
    }
}

impl ShardWriter for FsShardWriter {
    fn append(&mut self, piece: &[u8]) -> Result<(), ChunkError> {
        let mut next = self.pieces;
        next.admit(piece.len())?;
        let path = self.tmp_path.clone();
        let file = self.file()?;
        file.write_all(piece)
            .and_then(|()| file.write_all(&format::block_crc(piece)))
            .map_err(|e| ChunkError::io("write", &path, e))?;
        self.pieces = next;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<ShardStat, ChunkError> {
        let header = self.pieces.header(true);
        let tmp_path = self.tmp_path.clone();
        let file = self.file()?;
        file.write_all_at(&header.encode(), 0)
            .map_err(|e| ChunkError::io("write", &tmp_path, e))?;
        file.sync_all()
            .map_err(|e| ChunkError::io("fsync", &tmp_path, e))?;
        fs::rename(&self.tmp_path, &self.final_path)
            .map_err(|e| ChunkError::io("rename into place", &self.final_path, e))?;
        // Renamed: nothing is left to clean up, whatever happens next.
        self.file = None;
        sync_dir(&self.final_dir)?;
        Ok(header.stat())
    }
}

impl Drop for FsShardWriter {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            // Abandoned: the temporary file is not a shard. If removal fails, `sweep_temp`
            // gets it later.
            let _ = fs::remove_file(&self.tmp_path);
        }
        self.active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.tmp_name);
    }
}

struct FsShardReader {
    header: Header,
    file: File,
    path: PathBuf,
}

impl ShardReader for FsShardReader {
    fn stat(&self) -> ShardStat {
        self.header.stat()
    }

    fn read_block(&mut self, index: u64) -> Result<Bytes, ChunkError> {
        let id = self.header.id;
        let stat = self.header.stat();
        let piece_len = stat
            .piece_bytes_of(index)
            .ok_or(ChunkError::BlockOutOfRange {
                id,
                block: index,
                blocks: stat.blocks,
            })?;
        // piece_len ≤ MAX_PIECE_BYTES, checked when the header was decoded.
        let mut block = vec![0u8; piece_len as usize + CRC_BYTES];
        match self
            .file
            .read_exact_at(&mut block, self.header.block_offset(index))
        {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                return Err(ChunkError::corrupt(
                    id,
                    Some(index),
                    "file truncated while open",
                ))
            }
            Err(e) => return Err(ChunkError::io("read", &self.path, e)),
        }
        let len = format::check_block(id, index, &block)?;
        block.truncate(len);
        Ok(Bytes::from(block))
    }
}

#[cfg(test)]
mod tests {
    use super::super::contract;
    use super::*;

    fn store() -> (tempfile::TempDir, FsChunkStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = FsChunkStore::open(&dir.path().join("chunks")).unwrap();
        (dir, store)
    }

    #[test]
    fn write_read_delete() {
        let (_dir, s) = store();
        contract::write_read_delete(&s);
    }

    #[test]
    fn empty_shard() {
        let (_dir, s) = store();
        contract::empty_shard(&s);
    }

    #[test]
    fn bad_pieces_refused() {
        let (_dir, s) = store();
        contract::bad_pieces_refused(&s);
        assert_eq!(sorted_names(&s.tmp, |_| true).unwrap().len(), 0);
    }

    #[test]
    fn list_pages_in_order() {
        let (_dir, s) = store();
        contract::list_pages_in_order(&s);
    }

    #[test]
    fn overwrite_replaces() {
        let (_dir, s) = store();
        contract::overwrite_replaces(&s);
    }

    #[test]
    fn file_layout_is_fanned_out() {
        let (dir, s) = store();
        let id = ShardId::new(0xabcd_ef00_0000_0000_0000_0000_0000_0042, 5);
        contract::write(&s, id, &[5]);
        let expected = dir
            .path()
            .join("chunks/ab/cd/abcdef00000000000000000000000042-05.shard");
        assert_eq!(s.shard_path(id), expected);
        assert!(expected.exists());
        assert_eq!(
            fs::metadata(&expected).unwrap().len(),
            (HEADER_BYTES + 5 + CRC_BYTES) as u64
        );
    }

    #[test]
    fn a_flipped_byte_is_corruption_not_data() {
        let (_dir, s) = store();
        let id = ShardId::new(42, 1);
        contract::write(&s, id, &[1000, 1000, 300]);
        let path = s.shard_path(id);
        let mut bytes = fs::read(&path).unwrap();
        // A byte inside block 1's piece.
        bytes[HEADER_BYTES + 1004 + 500] ^= 0x01;
        fs::write(&path, &bytes).unwrap();

        assert!(s.read_block(id, 0).is_ok());
        assert!(matches!(
            s.read_block(id, 1),
            Err(ChunkError::Corrupt { block: Some(1), .. })
        ));
        assert!(s.read_block(id, 2).is_ok());
        assert!(matches!(
            s.verify(id),
            Err(ChunkError::Corrupt { block: Some(1), .. })
        ));

        // A flipped CRC byte is caught just the same.
        let mut bytes = fs::read(&path).unwrap();
        bytes[HEADER_BYTES + 1000] ^= 0x80;
        fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            s.read_block(id, 0),
            Err(ChunkError::Corrupt { block: Some(0), .. })
        ));
    }

    #[test]
    fn truncated_or_extended_files_are_corrupt() {
        let (_dir, s) = store();
        let id = ShardId::new(43, 0);
        contract::write(&s, id, &[1000, 1000]);
        let path = s.shard_path(id);
        let full = fs::read(&path).unwrap();

        // Cut at a block boundary: every remaining block would check out on its own.
        fs::write(&path, &full[..HEADER_BYTES + 1004]).unwrap();
        let err = s.stat(id).unwrap_err();
        assert!(matches!(err, ChunkError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("truncated"), "{err}");
        assert!(s.read_block(id, 0).is_err());

        let mut longer = full.clone();
        longer.extend_from_slice(b"junk");
        fs::write(&path, &longer).unwrap();
        assert!(matches!(s.stat(id), Err(ChunkError::Corrupt { .. })));

        // Truncated after the reader was opened.
        fs::write(&path, &full).unwrap();
        let mut reader = s.open(id).unwrap();
        fs::write(&path, &full[..HEADER_BYTES + 1500]).unwrap();
        assert!(reader.read_block(0).is_ok());
        assert!(matches!(
            reader.read_block(1),
            Err(ChunkError::Corrupt { block: Some(1), .. })
        ));
    }

    #[test]
    fn bad_headers_are_refused_clearly() {
        let (_dir, s) = store();
        let id = ShardId::new(44, 2);
        contract::write(&s, id, &[10]);
        let path = s.shard_path(id);

        let mut bytes = fs::read(&path).unwrap();
        bytes[0] = b'X';
        fs::write(&path, &bytes).unwrap();
        let err = s.stat(id).unwrap_err().to_string();
        assert!(err.contains("not a Stratus shard file"), "{err}");

        // A valid file of another shard, put at this one's path.
        let other = ShardId::new(45, 2);
        contract::write(&s, other, &[10]);
        fs::copy(s.shard_path(other), &path).unwrap();
        let err = s.stat(id).unwrap_err().to_string();
        assert!(err.contains("file holds shard"), "{err}");
    }

    #[test]
    fn garbage_files_never_panic() {
        let (_dir, s) = store();
        let id = ShardId::new(46, 0);
        let path = s.shard_path(id);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut seed = 0x1234_5678u32;
        for len in [0usize, 1, 63, 64, 65, 100, 4096] {
            let junk: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (seed >> 16) as u8
                })
                .collect();
            fs::write(&path, &junk).unwrap();
            assert!(matches!(s.stat(id), Err(ChunkError::Corrupt { .. })));
            assert!(s.read_block(id, 0).is_err());
            assert!(s.verify(id).is_err());
        }
        // Stray names are not shards; a directory where a shard should be is an error.
        fs::write(s.root().join("README"), b"x").unwrap();
        fs::write(path.parent().unwrap().join("notes.txt"), b"x").unwrap();
        fs::write(path.with_extension("bak"), b"x").unwrap();
        assert_eq!(s.list(None, 10).unwrap(), vec![id]);
        fs::remove_file(&path).unwrap();
        fs::create_dir(&path).unwrap();
        assert!(s.stat(id).is_err());
    }

    #[test]
    fn unfinished_writes_are_invisible_and_swept() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("chunks");
        let s = FsChunkStore::open(&root).unwrap();
        let id = ShardId::new(47, 0);
        let mut w = s.create(id, contract::format()).unwrap();
        w.append(&[7; 1000]).unwrap();
        // "Crash": the writer never finishes and its cleanup never runs.
        std::mem::forget(w);
        assert!(matches!(s.stat(id), Err(ChunkError::NotFound(_))));
        assert!(s.list(None, 10).unwrap().is_empty());
        assert_eq!(sorted_names(&s.tmp, |_| true).unwrap().len(), 1);
        drop(s);

        // After a restart: the leftover goes, a writer open in this process stays.
        let s = FsChunkStore::open(&root).unwrap();
        let open_id = ShardId::new(48, 0);
        let mut open_writer = s.create(open_id, contract::format()).unwrap();
        open_writer.append(&[8; 10]).unwrap();
        assert_eq!(s.sweep_temp().unwrap(), 1);
        assert_eq!(sorted_names(&s.tmp, |_| true).unwrap().len(), 1);
        open_writer.finish().unwrap();
        assert_eq!(s.sweep_temp().unwrap(), 0);
        assert_eq!(sorted_names(&s.tmp, |_| true).unwrap().len(), 0);
        assert_eq!(s.list(None, 10).unwrap(), vec![open_id]);
        assert!(matches!(s.stat(id), Err(ChunkError::NotFound(_))));
    }

    #[test]
    fn file_names_parse_strictly() {
        let id = ShardId::new(u128::MAX - 5, 255);
        assert_eq!(parse_file_name(OsStr::new(&file_name(id))), Some(id));
        for bad in [
            "x.shard",
            "ABCDEF00000000000000000000000042-0a.shard",
            "abcdef00000000000000000000000042-0a",
            "abcdef00000000000000000000000042-0a0.shard",
            "abcdef0000000000000000000000042-0a.shard",
            "+bcdef00000000000000000000000042-0a.shard",
        ] {
            assert_eq!(parse_file_name(OsStr::new(bad)), None, "{bad}");
        }
    }
}
