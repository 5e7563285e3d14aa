/** Task: registers (or looks up) lock class names on this CPU and returns their ids. */
import { lockClass, lockClassName } from '../../../src/sync/lockclass.js';

export default function classes(
  cpu: number,
  args: { names: string[]; lookup: number },
): { ids: number[]; name: string } {
  return {
    ids: args.names.map((n) => lockClass(n.replace('$cpu', String(cpu)))),
    name: lockClassName(args.lookup),
  };
}
