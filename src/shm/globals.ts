/**
 * Process-wide shared state (like the kernel's globals): lock classes, the lock validator's
 * dependency graph, global statistics. Each is a SharedArrayBuffer registered by name. The main
 * thread creates them; a `Machine` hands `describeGlobals()` to every CPU it starts, and the CPU
 * calls `attachGlobals()` before loading any task, so every CPU sees the same buffers.
 *
 * Register at module load (top level), so that loading a module on the main thread before the
 * CPUs start is enough for them to share it.
 */
import { isMainThread } from 'node:worker_threads';

const buffers = new Map<string, SharedArrayBuffer>();

/** The buffer registered as `name`, created with `bytes` zeroed bytes on first use. */
export function sharedGlobal(name: string, bytes: number): SharedArrayBuffer {
  let buffer = buffers.get(name);
  if (buffer === undefined) {
    if (!isMainThread) {
      throw new Error(`shared global ${name} was not created on the main thread before this CPU started`);
    }
    buffer = new SharedArrayBuffer(bytes);
    buffers.set(name, buffer);
  }
  if (buffer.byteLength !== bytes)
    throw new Error(`shared global ${name}: ${bytes} bytes asked, ${buffer.byteLength} exist`);
  return buffer;
}

export function describeGlobals(): Record<string, SharedArrayBuffer> {
  return Object.fromEntries(buffers);
}

/** On a CPU: adopt the main thread's globals (before any module that registers one is loaded). */
export function attachGlobals(globals: Record<string, SharedArrayBuffer>): void {
  for (const [name, buffer] of Object.entries(globals)) buffers.set(name, buffer);
}
