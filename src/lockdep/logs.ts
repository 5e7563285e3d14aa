/**
 * The validator's two shared logs: the stack traces of first-seen dependencies (and of held
 * locks that recorded one), and the reports (tagged with their check's index).
 */
import { sharedGlobal } from '../shm/globals.js';
import { SharedLog } from './log.js';

export const stackLog = new SharedLog(sharedGlobal('lockdep.stacks', 1024 * 1024));
export const reportLog = new SharedLog(sharedGlobal('lockdep.reports', 256 * 1024));
