//! The process's global allocator: the system allocator, except that huge requests are served
//! by lazily committed anonymous mappings.
//!
//! Why: `kafka-protocol` pre-sizes every decoded array by the element count the client claims
//! (`Vec::with_capacity(n)`), so a 20-byte frame claiming 2^31 elements asks for hundreds of
//! GiB. The system allocator refuses, and a refused allocation aborts the whole process. With
//! `MAP_NORESERVE` the kernel hands out address space without committing memory, the decoder
//! then fails for lack of bytes, and the mapping is returned untouched: the bad request costs
//! its connection, nothing more. No legitimate allocation of this broker comes near the
//! threshold (frames are capped at `kafka.max_request_bytes` ≤ 2 GiB).

use std::alloc::{GlobalAlloc, Layout, System};

/// Requests at least this large are mapped instead of allocated.
const HUGE: usize = 4 << 30;
/// mmap returns page-aligned memory; larger alignments go to the system allocator.
const PAGE: usize = 4096;

/// The allocator; installed with `#[global_allocator]` in `main.rs`.
pub struct GuardedAlloc;

fn mapped(layout: &Layout) -> bool {
    layout.size() >= HUGE && layout.align() <= PAGE
}

// SAFETY: every pointer handed out comes either from `System` with the same layout rules, or
// from `mmap` of at least `layout.size()` bytes, page aligned (≥ `layout.align()`), and is
// returned to the same source it came from (decided by the same size/alignment test).
unsafe impl GlobalAlloc for GuardedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !mapped(&layout) {
            // SAFETY: forwarded with the caller's guarantees.
            return unsafe { System.alloc(layout) };
        }
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
        // SAFETY: an anonymous private mapping with no address hint has no preconditions.
        let p = unsafe {
            libc::mmap(std::ptr::null_mut(), layout.size(), libc::PROT_READ | libc::PROT_WRITE, flags, -1, 0)
        };
        if p == libc::MAP_FAILED { std::ptr::null_mut() } else { p.cast() }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !mapped(&layout) {
            // SAFETY: forwarded with the caller's guarantees.
            return unsafe { System.alloc_zeroed(layout) };
        }
        // SAFETY: fresh anonymous mappings are zero-filled by the kernel.
        unsafe { self.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if mapped(&layout) {
            // SAFETY: `ptr` came from our mmap of `layout.size()` bytes.
            unsafe { libc::munmap(ptr.cast(), layout.size()) };
        } else {
            // SAFETY: `ptr` came from `System` with this layout.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size` is valid for `layout.align()`.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        if !mapped(&layout) && !mapped(&new_layout) {
            // SAFETY: both sides are System's; forwarded with the caller's guarantees.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // SAFETY: allocate, copy the overlap, free the old block, each from its own source.
        unsafe {
            let new = self.alloc(new_layout);
            if !new.is_null() {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            new
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    /// Runs under the binary's global allocator: without the guard this test aborts the process.
    #[test]
    fn a_frame_claiming_billions_of_elements_is_just_an_error() {
        // Metadata v0, correlation 1, null client id, then a topics array claiming i32::MAX entries.
        let frame = Bytes::from_static(&[0, 3, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff]);
        assert!(chronik::protocol::parse_request(frame).is_err());
        // CreateTopics v2, whose topics array claims i32::MAX entries of a much larger struct.
        let frame = Bytes::from_static(&[0, 19, 0, 2, 0, 0, 0, 1, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff]);
        assert!(chronik::protocol::parse_request(frame).is_err());
    }

    #[test]
    fn huge_blocks_round_trip() {
        let mut v: Vec<u8> = Vec::with_capacity(super::HUGE);
        v.extend_from_slice(b"hello");
        v.shrink_to_fit();
        assert_eq!(&v, b"hello");
    }
}
