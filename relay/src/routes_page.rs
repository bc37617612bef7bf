//! The routes page (docs/PROTOCOL.md §8): a file of 8 bytes beside the name table, which
//! processes on the direct path map read-only. Its epoch moves on whenever every direct
//! route must be dropped (the first monitor attaches; a relay starts and knows nothing of
//! the routes an earlier one gave), so such a process checks one word per direct send
//! instead of probing its queue for a DROP_ROUTES message.

use mipc::direct::{ROUTES_PAGE_EPOCH, ROUTES_PAGE_LEN, ROUTES_PAGE_MAGIC};
use mipc::os::mapped::MappedFile;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

/// The relay's routes page, mapped.
#[derive(Debug)]
pub struct RoutesPage {
    path: PathBuf,
    map: MappedFile,
}

impl RoutesPage {
    /// Opens the page at `path` (making it when there is none, readable by whoever may use
    /// the queues: `mode` is the queues' mode), and moves its epoch on. An existing file is
    /// kept, never truncated: processes that map it keep following it across a restart.
    ///
    /// # Errors
    /// When the file cannot be made, sized or mapped.
    pub fn open(path: PathBuf, mode: u32) -> io::Result<RoutesPage> {
        let file = mipc::os::mapped::open_kept(&path)?;
        // Only the relay writes it; the group reads it when the queues are the group's.
        file.set_permissions(std::fs::Permissions::from_mode(0o600 | (mode & 0o040)))?;
        if file.metadata()?.len() < ROUTES_PAGE_LEN as u64 {
            file.set_len(ROUTES_PAGE_LEN as u64)?;
        }
        let map = MappedFile::map(&file, ROUTES_PAGE_LEN)?;
        let mut page = RoutesPage { path, map };
        if let Some(magic) = page.map.atomic_u32(0) {
            magic.store(ROUTES_PAGE_MAGIC, Ordering::Release);
        }
        page.drop_routes();
        Ok(page)
    }

    /// Moves the epoch on: every process following the page drops its direct routes before
    /// its next direct send.
    pub fn drop_routes(&mut self) {
        if let Some(epoch) = self.map.atomic_u32(ROUTES_PAGE_EPOCH) {
            epoch.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Removes the file (the relay stops with no entry left, so no process follows it).
    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The routes page of the bus whose name table is at `entries_path`.
pub fn path_beside(entries_path: &std::path::Path) -> PathBuf {
    entries_path.with_extension("routes")
}
