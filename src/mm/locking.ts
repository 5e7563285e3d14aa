/**
 * The lock order of vmspace and the lock classes of the mm layer. This comment is the one
 * authoritative copy in the code (docs/locking.md mirrors it); the lock validator (src/lockdep)
 * reports any acquisition that contradicts an order it has seen.
 *
 *   f_pos_lock              open file description (src/fs/open-file.ts): read/write/lseek on it
 *   i_rwsem                 file; the read/write path copies to/from user memory holding it
 *     mmap_lock             address-space rwsem; the maple tree's external writer lock
 *       invalidateLock      file; shared to add pages to the cache, exclusive to truncate/punch
 *         page lock
 *           VMA write lock  per-VMA (vmaStartWrite), only with mmap_lock held for write
 *             i_mmap        file's reverse map
 *               anon_vma
 *                 page-table lock   mm->page_table_lock (mm-state.ts): empty PMD entries, anon_vma
 *                                   assignment under mmap_lock held for read; and ptl, split per
 *                                   page-table page (src/mem/pgtable-core.ts, class 'ptl'): the
 *                                   innermost mm lock, nested inside page_table_lock when both
 *                                   are held; mremap holds a second one as subclass 1
 *                   i_pages file; spinlock over its page index (src/fs/page-index.ts): inserts
 *                           and erases only, nothing but arena locks under it
 *
 *   - file_lock (a descriptor table's spinlock, src/fs/fd-table.ts) and the arena locks are leaves.
 *   - inode_hash (src/fs/inode-hash.ts, a spinlock) is a leaf, taken with no lock held: by open
 *     (lookup and insert of a host file's record) and by a file's release (the unhash, last).
 *   - fork takes the parent's mmap_lock (W), then the child's (W, subclass 1), and allocates frames
 *     and tables under them (dup_mmap): the one allocation under mmap_lock (W), as in Linux.
 *     Its page-table copy is a write section of the parent's write_protect_seq (mm-state.ts),
 *     under both mmap_locks, with the PTLs inside; GUP-fast only probes it (never waits), so it
 *     orders nothing.
 *   - i_rwsem and invalidate_lock live in each file record (src/fs/file-table.ts); f_pos_lock (a
 *     mutex) in each open file description, taken before i_rwsem, as Linux's fdget_pos.
 *   - Backings (src/fs/host-backing.ts) and injected latency do I/O: never under mmap_lock, a
 *     spinlock or RCU (fsMightIO reports it); a file's last put may close a host descriptor, so
 *     no file or description reference is put under file_lock.
 *   - page lock (class page_lock, src/fs/page-lock.ts): PG_LOCKED of a page, a sleeping lock; one
 *     held at a time. Reclaim takes it by trylock only, so it may run under invalidate_lock.
 *   - The tree's writer lock is mmap_lock itself (held for write); trees with their own lock take
 *     it under mmap_lock.
 *   - RCU read sections nest inside anything; nothing blocks inside one.
 *   - Arena free-list spinlocks are leaves: held for a few plain accesses, they never call out.
 *   - A VMA read lock (fault path) is never waited for: it is a trylock under RCU (or after
 *     mmap_lock), and a fault that cannot get it falls back to mmap_lock. So it is never taken
 *     before mmap_lock and never closes a cycle; the validator sees it as a read trylock.
 */
import { lockClass } from '../sync/lockclass.js';

/**
 * Lock class ids (registered at load: the same id on every CPU). "mmap_lock" is every address
 * space's mmap_lock (the validator's mmap_lock checks key on the name; the maple tree of VMAs names
 * it as its external lock); "vma_lock" the per-VMA locks.
 */
export const mmapLockClass = lockClass('mmap_lock');
export const vmaLockClass = lockClass('vma_lock');
