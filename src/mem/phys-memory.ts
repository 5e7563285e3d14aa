/**
 * The bytes of physical memory (docs/mem.md, "Bulk copies"): one shared WebAssembly.Memory, whose
 * buffer is an ordinary SharedArrayBuffer under every typed-array view of PhysMem, and a memmove
 * over it that each thread instantiates for itself (physMove).
 *
 * Why WebAssembly: a typed array's copyWithin or set on a SharedArrayBuffer copies element by
 * element with relaxed atomic accesses (V8 keeps the JS memory model's tear-free elements), while
 * WebAssembly's memory.copy on a shared memory is a plain memmove (its memory model leaves the
 * order of the bytes of a racing copy unspecified, as copy_to_user does). Measured on this 2-core
 * VM, 1 MiB inside one buffer: copyWithin 34 GB/s, memory.copy 58 GB/s; a read() of a cached file
 * is mostly this copy (bench `fs.read_cached_1m.gbps`).
 *
 * The memory is sized in WebAssembly pages (64 KiB), the bytes asked rounded up, and never grown:
 * its buffer never changes, so views over it stay valid. Byte offsets are passed as i32 (an offset
 * from 2^31 wraps to a negative int, which memory.copy reads back as the unsigned address).
 */

// The few WebAssembly declarations used here (the project's lib is ES2024 without the DOM's, and
// @types/node declares none).
declare global {
  namespace WebAssembly {
    interface MemoryDescriptor {
      initial: number;
      maximum?: number;
      shared?: boolean;
    }
    class Memory {
      constructor(descriptor: MemoryDescriptor);
      readonly buffer: ArrayBuffer | SharedArrayBuffer;
    }
    class Module {
      constructor(bytes: Uint8Array);
    }
    class Instance {
      constructor(module: Module, imports: Record<string, Record<string, unknown>>);
      readonly exports: Record<string, unknown>;
    }
  }
}

const WASM_PAGE = 65536;
/** The largest memory: 65536 WebAssembly pages, 4 GiB (PhysMem's MAX_FRAMES frames). */
const MAX_WASM_PAGES = 65536;

/**
 * (module
 *   (import "m" "mem" (memory 1 65536 shared))
 *   (func (export "move") (param $dst i32) (param $src i32) (param $len i32)
 *     (memory.copy (local.get $dst) (local.get $src) (local.get $len))))
 */
// biome-ignore format: one line per part of the module
const MOVE_WASM = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
  0x01, 0x07, 0x01, 0x60, 0x03, 0x7f, 0x7f, 0x7f, 0x00, // type 0: (i32 i32 i32) -> ()
  0x02, 0x0d, 0x01, 0x01, 0x6d, 0x03, 0x6d, 0x65, 0x6d, // import "m" "mem":
  0x02, 0x03, 0x01, 0x80, 0x80, 0x04, //                   memory, shared, min 1, max 65536
  0x03, 0x02, 0x01, 0x00, // function 0 has type 0
  0x07, 0x08, 0x01, 0x04, 0x6d, 0x6f, 0x76, 0x65, 0x00, 0x00, // export "move" = function 0
  0x0a, 0x0e, 0x01, 0x0c, 0x00, // code: one body of 12 bytes, no locals
  0x20, 0x00, 0x20, 0x01, 0x20, 0x02, // local.get 0, 1, 2
  0xfc, 0x0a, 0x00, 0x00, // memory.copy (memory 0 to memory 0)
  0x0b, // end
]);

/** memmove(dst, src, len) inside the memory, in bytes: no allocation, throws if out of bounds. */
export type PhysMove = (dst: number, src: number, len: number) => void;

/** This thread's compiled module (compiled at the first physMove). */
let moveModule: WebAssembly.Module | null = null;

/** A fresh shared memory of at least `bytes` bytes (zeros; committed by the OS as first touched). */
export function allocPhysMemory(bytes: number): WebAssembly.Memory {
  const pages = Math.max(1, Math.ceil(bytes / WASM_PAGE));
  if (pages > MAX_WASM_PAGES) throw new RangeError(`physical memory of ${bytes} bytes is over 4 GiB`);
  return new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
}

/** The memmove over `memory` for this thread (one instance per call: call it once per PhysMem view). */
export function physMove(memory: WebAssembly.Memory): PhysMove {
  moveModule ??= new WebAssembly.Module(MOVE_WASM);
  const instance = new WebAssembly.Instance(moveModule, { m: { mem: memory } });
  return instance.exports.move as PhysMove;
}
