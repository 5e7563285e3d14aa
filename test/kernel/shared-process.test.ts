import { test } from 'node:test';
import { raceSharedProcess } from './shared-process.js';

test('two CPUs make syscalls on one process beside a fault-path reader: the log replays to the same maps, counters match recounts, nothing leaks', async () => {
  await raceSharedProcess(Number(process.env.VMSPACE_SEED ?? 4242), 1500);
});
