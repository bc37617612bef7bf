//! A file mapped shared into memory: what is written to it stays in the file when the
//! process dies (the relay's pending calls, `relay/src/pending.rs`).

use nix::sys::mman::{madvise, mmap, munmap, MapFlags, MmapAdvise, ProtFlags};
use std::fs::File;
use std::io;
use std::num::NonZeroUsize;
use std::ptr::NonNull;

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
