/**
 * An append-only log of text records in one SharedArrayBuffer, shared by every CPU: the stack
 * traces of the dependency graph and the validator's reports.
 *
 *   Int32 header (16 bytes): LOCK  USED  DROPPED  (pad)
 *   data (bytes after the header):
 *   +-----------+--------------+---------------------------+-----------+-- ...
 *   | tag (i32) | length (i32) | UTF-8 text, padded to 4   | tag       |
 *   +-----------+--------------+---------------------------+-----------+-- ...
 *
 * A record's id is its byte offset in the data area + 1 (0 means "no record"). Invariants: records
 * are never changed once USED covers them; USED only grows (until `clear`); appends are serialised
 * by LOCK; a record that does not fit is dropped and counted in DROPPED.
 */
import { lockWord, unlockWord } from './wordlock.js';

const LOCK = 0;
const USED = 1;
const DROPPED = 2;
const HEADER_BYTES = 16;
const RECORD_HEADER = 8;
/** Longest text kept in one record (longer text is cut, with a marker). */
const MAX_TEXT_BYTES = 16 * 1024;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export interface LogRecord {
  id: number;
  tag: number;
  text: string;
}

export class SharedLog {
  private readonly header: Int32Array;
  private readonly data: Uint8Array;
  private readonly ints: Int32Array;

  constructor(buffer: SharedArrayBuffer) {
    if (buffer.byteLength <= HEADER_BYTES || buffer.byteLength % 4 !== 0) {
      throw new RangeError(`lockdep log: ${buffer.byteLength} bytes is not a usable size`);
    }
    this.header = new Int32Array(buffer, 0, HEADER_BYTES / 4);
    this.data = new Uint8Array(buffer, HEADER_BYTES);
    this.ints = new Int32Array(buffer, HEADER_BYTES);
  }

  /** Appends `text` under `tag`; returns its id, or 0 when the log is full (counted as dropped). */
  append(tag: number, text: string): number {
    let bytes = encoder.encode(text);
    if (bytes.length > MAX_TEXT_BYTES)
      bytes = encoder.encode(`${text.slice(0, MAX_TEXT_BYTES / 4)}\n[... cut]`);
    const size = RECORD_HEADER + ((bytes.length + 3) & ~3);
    lockWord(this.header, LOCK);
    try {
      const at = this.header[USED];
      if (at + size > this.data.length) {
        Atomics.add(this.header, DROPPED, 1);
        return 0;
      }
      this.ints[at >> 2] = tag;
      this.ints[(at >> 2) + 1] = bytes.length;
      this.data.set(bytes, at + RECORD_HEADER);
      Atomics.store(this.header, USED, at + size);
      return at + 1;
    } finally {
      unlockWord(this.header, LOCK);
    }
  }

  /** The text of record `id` ("" for id 0). */
  text(id: number): string {
    if (id === 0) return '';
    const at = this.checkId(id);
    const length = this.ints[(at >> 2) + 1];
    return decoder.decode(this.data.slice(at + RECORD_HEADER, at + RECORD_HEADER + length));
  }

  /** Every record, oldest first. */
  records(): LogRecord[] {
    const out: LogRecord[] = [];
    const used = Atomics.load(this.header, USED);
    for (let at = 0; at < used; ) {
      const length = this.ints[(at >> 2) + 1];
      out.push({ id: at + 1, tag: this.ints[at >> 2], text: this.text(at + 1) });
      at += RECORD_HEADER + ((length + 3) & ~3);
    }
    return out;
  }

  /** Records dropped because the log was full. */
  get dropped(): number {
    return Atomics.load(this.header, DROPPED);
  }

  /** Forgets every record (no other CPU may be appending). */
  clear(): void {
    lockWord(this.header, LOCK);
    this.header[DROPPED] = 0;
    Atomics.store(this.header, USED, 0);
    unlockWord(this.header, LOCK);
  }

  private checkId(id: number): number {
    const at = id - 1;
    if (!(Number.isInteger(id) && at >= 0 && at % 4 === 0 && at < Atomics.load(this.header, USED))) {
      throw new RangeError(`lockdep log: record ${id} does not exist`);
    }
    return at;
  }
}
