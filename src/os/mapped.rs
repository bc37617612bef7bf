//! A file mapped shared into memory: what is written to it stays in the file when the
//! process dies (the relay's pending calls, `relay/src/pending.rs`).

use nix::sys::mman::{madvise, mmap, munmap, MapFlags, MmapAdvise, ProtFlags};
use std::fs::File;
use std::io;
use std::num::NonZeroUsize;
use std::ptr::NonNull;

/// Opens the file at `path` for reading and writing, making it when there is none and never
/// truncating it: what an earlier process left there is kept (a relay's files of a bus).
///
/// # Errors
/// When it can be neither opened nor made.
pub fn open_kept(path: &std::path::Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

/// `len` bytes of a file, mapped shared, readable and writable.
#[derive(Debug)]
pub struct MappedFile {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is owned by this value alone (no pointer into it escapes but through
// `&mut self`), so moving it to another thread moves exclusive access.
unsafe impl Send for MappedFile {}

impl MappedFile {
    /// Maps the first `len` bytes of `file` (at least that long, opened for reading and
    /// writing). The file may be closed afterwards.
    ///
    /// # Errors
    /// When `len` is 0 or the mapping fails.
    pub fn map(file: &File, len: usize) -> io::Result<MappedFile> {
        let size = NonZeroUsize::new(len).ok_or(io::ErrorKind::InvalidInput)?;
        // SAFETY: maps len bytes of a file held open for reading and writing, shared so that
        // the data outlives this process; no address is imposed, so nothing is overwritten.
        let base = unsafe {
            mmap(
                None,
                size,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
                file,
                0,
            )
        }
        .map_err(io::Error::from)?;
        Ok(MappedFile {
            base: base.cast(),
            len,
        })
    }

    /// The mapped bytes.
    pub fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: base and len are the live mapping, which this value owns exclusively
        // (&mut self).
        unsafe { std::slice::from_raw_parts_mut(self.base.as_ptr(), self.len) }
    }

    /// The `u32` at byte `offset` as an atomic, for a word other processes read while this
    /// one writes it (`None` when not 4-aligned or not within the mapping).
    pub fn atomic_u32(&mut self, offset: usize) -> Option<&std::sync::atomic::AtomicU32> {
        if offset % 4 != 0 || offset.checked_add(4)? > self.len {
            return None;
        }
        // SAFETY: base is page-aligned, so base + offset is 4-aligned, and the 4 bytes lie
        // within the live mapping (checked above), which outlives the borrow of self.
        Some(unsafe { &*(self.base.as_ptr().add(offset) as *const std::sync::atomic::AtomicU32) })
    }

    /// Lets the kernel drop this process's pages of the mapping (the data stays in the
    /// file; a page comes back when touched).
    pub fn release_pages(&mut self) {
        // SAFETY: base and len are the mapping; MADV_DONTNEED on a shared file mapping only
        // drops the process's page table entries.
        let _ = unsafe { madvise(self.base.cast(), self.len, MmapAdvise::MADV_DONTNEED) };
    }
}

impl Drop for MappedFile {
    fn drop(&mut self) {
        // SAFETY: base and len are what mmap returned and was given; nothing borrows the
        // mapping any more (Drop has &mut self).
        let _ = unsafe { munmap(self.base.cast(), self.len) };
    }
}

/// What [`ReadOnlyPage`] maps: one page on every Linux target we build for.
const PAGE_LEN: usize = 4096;

/// The first page of a file, mapped shared and read-only: a word another process publishes
/// (the relay's routes page, `direct.rs`). Never unmapped, so a reference to it stays valid
/// for the life of the process (a map replaced by a newer one costs a page of address space).
#[derive(Debug)]
pub struct ReadOnlyPage {
    base: NonNull<u8>,
    /// Bytes of the page the file covered when it was mapped: reads stay within them.
    readable: usize,
}

// SAFETY: the page is only read, through atomics, and never unmapped.
unsafe impl Send for ReadOnlyPage {}
// SAFETY: as above: shared reads through atomics only.
unsafe impl Sync for ReadOnlyPage {}

impl ReadOnlyPage {
    /// Maps the start of `file`, which must be at least `need` bytes long (so no read of
    /// those bytes can fault past the end of the file), `need` at most 4096.
    ///
    /// # Errors
    /// When the file is shorter, or the mapping fails.
    pub fn map(file: &File, need: usize) -> io::Result<&'static ReadOnlyPage> {
        let len = file.metadata()?.len();
        if need > PAGE_LEN || len < need as u64 {
            return Err(io::ErrorKind::InvalidData.into());
        }
        let size = NonZeroUsize::new(PAGE_LEN).ok_or(io::ErrorKind::InvalidInput)?;
        // SAFETY: maps one page of a file opened for reading, read-only and shared; no
        // address is imposed, so nothing is overwritten.
        let base = unsafe {
            mmap(
                None,
                size,
                ProtFlags::PROT_READ,
                MapFlags::MAP_SHARED,
                file,
                0,
            )
        }
        .map_err(io::Error::from)?;
        Ok(Box::leak(Box::new(ReadOnlyPage {
            base: base.cast(),
            readable: need,
        })))
    }

    /// The `u32` at byte `offset`, read with acquire ordering; 0 for an offset that is not
    /// 4-aligned or not within the bytes the file covered when mapped.
    #[inline]
    pub fn load_u32(&self, offset: usize) -> u32 {
        if offset % 4 != 0 || offset + 4 > self.readable {
            return 0;
        }
        // SAFETY: the page is mapped for the life of the process, base is page-aligned so
        // base + offset is 4-aligned, and the word lies within the bytes the file covered at
        // map time (checked above). Another process writes it with atomics.
        unsafe {
            let p = self.base.as_ptr().add(offset) as *const std::sync::atomic::AtomicU32;
            (*p).load(std::sync::atomic::Ordering::Acquire)
        }
    }
}
