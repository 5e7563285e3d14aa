/**
 * Tasks over one PhysMem shared by worker CPUs (test/mem/frames-cpus.test.ts).
 *
 * `churn`: every CPU allocates and frees frames flat out, keeping up to `window` of them. Each
 * frame it allocates must be zero; it stamps the frame's first, last and one middle word with
 * (cpu, sequence number) and checks the stamp and the descriptor (owner = cpu + 1, index = seq)
 * before putting it. Every few frames it also hands one to the next CPU: it takes a second
 * reference and posts the frame in that CPU's mailbox, which checks the stamp and puts its
 * reference while the sender still may hold its own, so either CPU's put can be the last one and
 * frames are freed into another CPU's list than the one they came from.
 *
 * `hold` / `put` / `touch` / `drain` / `spin`: single steps for the drain-request tests (allocate
 * until memory runs out, keeping the frames; put them; allocate and free one frame; drain this
 * CPU's list; spin until told to stop, as a CPU busy in a task).
 */
import { currentCpu } from '../../../src/cpu/current.js';
import { PhysMem, type PhysMemDescriptor } from '../../../src/mem/frames.js';
import { I32_PER_PAGE, KIND_ANON } from '../../../src/mem/page.js';

export interface ChurnArgs {
  op: 'churn';
  mem: PhysMemDescriptor;
  cpus: number;
  rounds: number;
  window: number;
  /** Per CPU: [head, tail, ...MAILBOX slots] (single producer: the previous CPU). Word 0 of the whole buffer: a barrier. */
  mailboxes: SharedArrayBuffer;
}

export interface StepArgs {
  op: 'hold' | 'put' | 'touch' | 'drain' | 'spin';
  mem: PhysMemDescriptor;
  /** [count, pfns...]: what `hold` kept, for `put`. */
  held: SharedArrayBuffer;
  /** `hold` stops after this many frames (default: until memory is exhausted). */
  limit?: number;
}

export interface ChurnResult {
  allocs: number;
  sent: number;
  received: number;
}

export const MAILBOX = 64;
const BOX = 2 + MAILBOX;

function stamp(cpu: number, seq: number): number {
  return ((cpu + 1) << 24) | (seq & 0xffffff);
}

export default function task(cpu: number, args: ChurnArgs | StepArgs): ChurnResult | number {
  if (currentCpu() !== cpu) throw new Error(`task on cpu ${cpu} but currentCpu() is ${currentCpu()}`);
  const mem = PhysMem.attach(args.mem);
  if (args.op === 'churn') return churn(cpu, mem, args);
  const held = new Int32Array(args.held);
  if (args.op === 'hold') {
    const limit = args.limit ?? Number.POSITIVE_INFINITY;
    let n = 0;
    while (n < limit) {
      const pfn = mem.allocFrame(KIND_ANON, cpu + 1, 0);
      if (pfn === 0) break;
      held[1 + n++] = pfn;
    }
    held[0] = n;
    return n;
  }
  if (args.op === 'put') {
    for (let i = 1; i <= held[0]; i++) mem.putPage(held[i]);
    const n = held[0];
    held[0] = 0;
    return n;
  }
  if (args.op === 'drain') return mem.drainCpuCache();
  if (args.op === 'spin') {
    Atomics.store(held, 0, 1);
    while (Atomics.load(held, 0) === 1) {
      // Busy until the main thread stores 2.
    }
    return 0;
  }
  const pfn = mem.allocFrame(KIND_ANON, cpu + 1, 0);
  if (pfn !== 0) mem.putPage(pfn);
  return pfn;
}

function churn(cpu: number, mem: PhysMem, args: ChurnArgs): ChurnResult {
  const words = mem.i32;
  const boxes = new Int32Array(args.mailboxes);
  const mine = 1 + cpu * BOX;
  const next = 1 + ((cpu + 1) % args.cpus) * BOX;
  // The frames this CPU holds, as a ring of (pfn, seq).
  const ring = new Int32Array(args.window * 2);
  let head = 0;
  let held = 0;
  let seq = 0;
  let random = 0x9e3779b9 ^ (cpu * 0x85ebca6b);
  const result: ChurnResult = { allocs: 0, sent: 0, received: 0 };

  const check = (pfn: number, owner: number, s: number, who: string) => {
    const base = pfn * I32_PER_PAGE;
    const want = stamp(owner, s);
    if (
      words[base] !== want ||
      words[base + I32_PER_PAGE - 1] !== want ||
      words[base + 1 + (s % (I32_PER_PAGE - 2))] !== ~want ||
      mem.owner[pfn] !== owner + 1 ||
      mem.index[pfn] !== s
    ) {
      throw new Error(
        `cpu ${cpu} (${who}): pfn ${pfn} of cpu ${owner} seq ${s} lost its stamp (${mem.describeFrame(pfn)})`,
      );
    }
  };
  const receive = () => {
    let tail = Atomics.load(boxes, mine + 1);
    const end = Atomics.load(boxes, mine);
    while (tail !== end) {
      const slot = mine + 2 + (tail % MAILBOX);
      const pfn = boxes[slot];
      check(pfn, (cpu + args.cpus - 1) % args.cpus, mem.index[pfn], 'received');
      mem.putPage(pfn);
      tail++;
      result.received++;
    }
    Atomics.store(boxes, mine + 1, tail);
  };

  Atomics.add(boxes, 0, 1);
  while (Atomics.load(boxes, 0) < args.cpus) {
    // Start together.
  }
  for (let round = 0; round < args.rounds; round++) {
    random ^= random << 13;
    random ^= random >>> 17;
    random ^= random << 5;
    const allocate = held === 0 || (held < args.window && (random & 3) !== 0);
    if (allocate) {
      const s = seq++ & 0xffffff;
      const pfn = mem.allocFrame(KIND_ANON, cpu + 1, s);
      if (pfn === 0) throw new Error(`cpu ${cpu}: out of frames at round ${round} holding ${held}`);
      const base = pfn * I32_PER_PAGE;
      if (
        words[base] !== 0 ||
        words[base + I32_PER_PAGE - 1] !== 0 ||
        words[base + 1 + (s % (I32_PER_PAGE - 2))] !== 0
      ) {
        throw new Error(`cpu ${cpu}: pfn ${pfn} was not zero when allocated`);
      }
      const want = stamp(cpu, s);
      words[base] = want;
      words[base + I32_PER_PAGE - 1] = want;
      words[base + 1 + (s % (I32_PER_PAGE - 2))] = ~want;
      const at = ((head + held) % args.window) * 2;
      ring[at] = pfn;
      ring[at + 1] = s;
      held++;
      result.allocs++;
    } else {
      const pfn = ring[head * 2];
      const s = ring[head * 2 + 1];
      head = (head + 1) % args.window;
      held--;
      check(pfn, cpu, s, 'own');
      const tail = Atomics.load(boxes, next + 1);
      const end = Atomics.load(boxes, next);
      if (args.cpus > 1 && (random & 0x30) === 0 && end - tail < MAILBOX) {
        mem.getPage(pfn);
        boxes[next + 2 + (end % MAILBOX)] = pfn;
        Atomics.store(boxes, next, end + 1);
        result.sent++;
      }
      mem.putPage(pfn);
    }
    if ((round & 15) === 0) receive();
  }
  while (held > 0) {
    const pfn = ring[head * 2];
    check(pfn, cpu, ring[head * 2 + 1], 'own');
    mem.putPage(pfn);
    head = (head + 1) % args.window;
    held--;
  }
  // Everybody has sent everything before the last mailbox sweep.
  Atomics.add(boxes, 0, 1);
  while (Atomics.load(boxes, 0) < 2 * args.cpus) receive();
  receive();
  return result;
}
