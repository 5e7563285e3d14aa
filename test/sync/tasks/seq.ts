/**
 * Task: `writer` updates a pair (x, 2x) under a seqcount as fast as it can; `reader` reads the pair
 * with readBegin/readRetry and counts consistent reads that were torn (must stay 0).
 */
import type { LockDescriptor } from '../../../src/sync/lockview.js';
import { SeqCount } from '../../../src/sync/seqcount.js';

export default function seq(
  _cpu: number,
  args: { role: 'writer' | 'reader'; lock: LockDescriptor; data: SharedArrayBuffer; ms: number },
) {
  const sc = SeqCount.attach(args.lock);
  const d = new Int32Array(args.data);
  const end = Date.now() + args.ms;
  let n = 0;
  let torn = 0;
  let retries = 0;
  while (Date.now() < end) {
    for (let k = 0; k < 256; k++, n++) {
      if (args.role === 'writer') {
        sc.writeBegin();
        d[0] = n;
        d[1] = n * 2;
        sc.writeEnd();
      } else {
        let s = sc.readBegin();
        let x = d[0];
        let y = d[1];
        while (sc.readRetry(s)) {
          retries++;
          s = sc.readBegin();
          x = d[0];
          y = d[1];
        }
        if (y !== x * 2) torn++;
      }
    }
  }
  return { n, torn, retries };
}
