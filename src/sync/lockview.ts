/**
 * What every lock type shares: its state is a few Int32 words at `offset` in a shared Int32Array
 * (its own small SharedArrayBuffer, or embedded in an arena record), plus its lock class.
 * `LockDescriptor` is the structured-cloneable form another CPU attaches to.
 */
import { EINVAL, VmError } from '../errno.js';
import { assertLockClass, lockClass } from './lockclass.js';

export interface LockDescriptor {
  buffer: SharedArrayBuffer;
  /** Byte offset of the Int32Array the offset is relative to. */
  byteOffset: number;
  offset: number;
  classId: number;
}

export abstract class LockView {
  readonly words: Int32Array;
  readonly offset: number;
  readonly classId: number;

  protected constructor(words: Int32Array, offset: number, classId: number, size: number) {
    if (!(words.buffer instanceof SharedArrayBuffer))
      throw new VmError(EINVAL, 'lock words must be in a SharedArrayBuffer');
    if (!(Number.isInteger(offset) && offset >= 0 && offset + size <= words.length)) {
      throw new VmError(
        EINVAL,
        `lock words [${offset}, ${offset + size}) outside an Int32Array of ${words.length}`,
      );
    }
    assertLockClass(classId);
    this.words = words;
    this.offset = offset;
    this.classId = classId;
  }

  describe(): LockDescriptor {
    return {
      buffer: this.words.buffer as SharedArrayBuffer,
      byteOffset: this.words.byteOffset,
      offset: this.offset,
      classId: this.classId,
    };
  }
}

/** Words for a standalone lock of `size` words, and the id of `className`. */
export function ownWords(size: number, className: string): [Int32Array, number] {
  return [new Int32Array(new SharedArrayBuffer(size * 4)), lockClass(className)];
}

/** The words a descriptor names (a fixed-length view: fast to index even over a growable buffer). */
export function wordsOf(desc: LockDescriptor): Int32Array {
  return new Int32Array(desc.buffer, desc.byteOffset, (desc.buffer.byteLength - desc.byteOffset) >> 2);
}
