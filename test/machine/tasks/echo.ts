/**
 * Task: returns what it was given, tagged with the CPU id; throws on request; can await; can crash
 * its CPU (an uncaught exception in a timer after it returned).
 */
import { currentCpu } from '../../../src/cpu/current.js';

export default async function echo(
  cpu: number,
  args: { value: unknown; throwOn?: number; delayMs?: number; crashOn?: number },
) {
  if (currentCpu() !== cpu)
    throw new Error(`currentCpu() ${currentCpu()} differs from the task's cpu ${cpu}`);
  if (args.throwOn === cpu) throw new TypeError(`cpu ${cpu} was told to throw`);
  if (args.crashOn === cpu)
    setTimeout(() => {
      throw new RangeError(`cpu ${cpu} crashes`);
    }, 1);
  if (args.delayMs) await new Promise((resolve) => setTimeout(resolve, args.delayMs));
  return { cpu, value: args.value };
}
