/**
 * errseq (src/fs/errseq.ts): Linux's errseq_t behaviour, step by step: errors nobody saw collapse
 * into one, a sampler before an unseen error reports it, each cursor reports an error once, and the
 * counter moves only for an error after one was seen.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EIO, ENOSPC } from '../../src/errno.js';
import { errseqCheck, errseqCheckAndAdvance, errseqSample, errseqSet } from '../../src/fs/errseq.js';

test('errseq: set, sample, check and check-and-advance as Linux', () => {
  const word = new Int32Array(1);
  const cursors = new Int32Array(4);
  cursors[0] = errseqSample(word, 0);
  assert.equal(cursors[0], 0);
  assert.equal(errseqCheckAndAdvance(word, 0, cursors, 0), 0, 'nothing happened');
  const first = errseqSet(word, 0, -EIO);
  assert.equal(errseqSet(word, 0, -EIO), first, 'the same unseen error again changes nothing');
  // Sampled after the error, before anyone saw it: it is reported to this cursor too.
  cursors[1] = errseqSample(word, 0);
  assert.equal(cursors[1], 0);
  assert.equal(errseqCheck(word, 0, cursors[0]), -EIO);
  assert.equal(errseqCheckAndAdvance(word, 0, cursors, 0), -EIO);
  assert.equal(errseqCheckAndAdvance(word, 0, cursors, 0), 0, 'once per cursor');
  assert.equal(errseqCheckAndAdvance(word, 0, cursors, 1), -EIO);
  // Sampled once seen: this cursor starts after it.
  cursors[2] = errseqSample(word, 0);
  assert.equal(errseqCheckAndAdvance(word, 0, cursors, 2), 0);
  const second = errseqSet(word, 0, -ENOSPC);
  assert.notEqual(second >> 13, first >> 13, 'a new error after a seen one moves the counter');
  for (const c of [0, 1, 2]) assert.equal(errseqCheckAndAdvance(word, 0, cursors, c), -ENOSPC, `cursor ${c}`);
  // Two errors before anyone looks: one report, of the newest.
  errseqSet(word, 0, -EIO);
  errseqSet(word, 0, -ENOSPC);
  assert.equal(errseqCheckAndAdvance(word, 0, cursors, 0), -ENOSPC);
  assert.equal(errseqCheckAndAdvance(word, 0, cursors, 0), 0);
  assert.throws(() => errseqSet(word, 0, 5), /not a negative errno/);
});
