/**
 * A pipe holding page references (the vmsplice(2) analogue, CVE-2020-29374's vehicle):
 * spliceFrom takes a reference (get_user_pages_fast, read) to each page of a user range and queues the
 * bytes as (pfn, offset, length) segments; read copies out of the referenced frames (what the
 * frames hold at read time) and puts a page once all its bytes are read; close puts the rest.
 * A spliced page stays in the pipe after the process unmaps, writes (copy-on-write gives the
 * writer a new page, since the pipe's reference keeps the count above 1) or exits.
 */
import { EINVAL } from '../errno.js';
import type { PhysMem } from '../mem/frames.js';
import { PAGE_SIZE } from '../mem/page.js';
import { type GupSpace, gupPagesFast } from './gup.js';

export class Pipe {
  private readonly pfns: number[] = [];
  private readonly offs: number[] = [];
  private readonly lens: number[] = [];
  private head = 0;
  private closed = false;

  constructor(private readonly mem: PhysMem) {}

  /** Bytes queued and not read yet. */
  get size(): number {
    let n = 0;
    for (let i = this.head; i < this.lens.length; i++) n += this.lens[i];
    return n;
  }

  /**
   * vmsplice(fd, {addr, len}): references the pages of [addr, addr + len) of `mm` into the pipe.
   * Returns the bytes queued (fewer when a later page could not be had), or -errno (EFAULT: the
   * first page could not be had; EINVAL: a bad range or a closed pipe). The caller holds no lock.
   */
  spliceFrom(mm: GupSpace, addr: number, len: number): number {
    if (this.closed || !Number.isSafeInteger(addr) || !Number.isSafeInteger(len) || addr < 0 || len < 0)
      return -EINVAL;
    if (len === 0) return 0;
    const first = addr - (addr % PAGE_SIZE);
    const pages = Math.ceil((addr + len - first) / PAGE_SIZE);
    const got: number[] = [];
    const n = gupPagesFast(mm, first, pages, 0, got);
    if (n < 0) return n;
    let queued = 0;
    for (let i = 0; i < n; i++) {
      const pageStart = first + i * PAGE_SIZE;
      const from = Math.max(addr, pageStart);
      const to = Math.min(addr + len, pageStart + PAGE_SIZE);
      this.pfns.push(got[i]);
      this.offs.push(from - pageStart);
      this.lens.push(to - from);
      queued += to - from;
    }
    return queued;
  }

  /** Reads up to `len` bytes (fewer when the pipe holds fewer), putting each page read out. */
  read(len: number): Uint8Array {
    if (!Number.isSafeInteger(len) || len < 0) throw new RangeError(`Pipe.read: bad length ${len}`);
    const out = new Uint8Array(Math.min(len, this.size));
    let done = 0;
    while (done < out.length) {
      const h = this.head;
      const n = Math.min(this.lens[h], out.length - done);
      const from = this.pfns[h] * PAGE_SIZE + this.offs[h];
      out.set(this.mem.bytes.subarray(from, from + n), done);
      done += n;
      this.offs[h] += n;
      this.lens[h] -= n;
      if (this.lens[h] === 0) {
        this.mem.putPage(this.pfns[h]);
        this.head++;
      }
    }
    this.compact();
    return out;
  }

  /** Puts every reference still queued; the pipe takes no more. */
  close(): void {
    for (let i = this.head; i < this.pfns.length; i++) this.mem.putPage(this.pfns[i]);
    this.head = this.pfns.length;
    this.compact();
    this.closed = true;
  }

  private compact(): void {
    if (this.head === 0) return;
    this.pfns.splice(0, this.head);
    this.offs.splice(0, this.head);
    this.lens.splice(0, this.head);
    this.head = 0;
  }
}
