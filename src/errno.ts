/**
 * Linux errno values (x86_64) and the error type the syscall layer throws at its API boundary.
 *
 * Hot paths return negative errno numbers (Linux style, no allocation); the public API converts a
 * negative return into a thrown `VmError` carrying the symbolic name, so users see `EINVAL`,
 * `ENOMEM`, ... exactly as Linux names them.
 */
export const EPERM = 1;
export const ENOENT = 2;
export const ESRCH = 3;
export const EINTR = 4;
export const EIO = 5;
export const ENXIO = 6;
export const EBADF = 9;
export const EAGAIN = 11;
export const ENOMEM = 12;
export const EACCES = 13;
export const EFAULT = 14;
export const EBUSY = 16;
export const EEXIST = 17;
export const ENODEV = 19;
export const ENOTDIR = 20;
export const EISDIR = 21;
export const EINVAL = 22;
export const ENFILE = 23;
export const EMFILE = 24;
export const ETXTBSY = 26;
export const EFBIG = 27;
export const ENOSPC = 28;
export const EROFS = 30;
export const EDEADLK = 35;
export const ENAMETOOLONG = 36;
export const ELOOP = 40;
export const EOVERFLOW = 75;
export const EOPNOTSUPP = 95;
export const ETIMEDOUT = 110;
export const EDQUOT = 122;

const NAMES: Record<number, string> = {
  [EPERM]: 'EPERM',
  [ENOENT]: 'ENOENT',
  [ESRCH]: 'ESRCH',
  [EINTR]: 'EINTR',
  [EIO]: 'EIO',
  [ENXIO]: 'ENXIO',
  [EBADF]: 'EBADF',
  [EAGAIN]: 'EAGAIN',
  [ENOMEM]: 'ENOMEM',
  [EACCES]: 'EACCES',
  [EFAULT]: 'EFAULT',
  [EBUSY]: 'EBUSY',
  [EEXIST]: 'EEXIST',
  [ENODEV]: 'ENODEV',
  [ENOTDIR]: 'ENOTDIR',
  [EISDIR]: 'EISDIR',
  [EINVAL]: 'EINVAL',
  [ENFILE]: 'ENFILE',
  [EMFILE]: 'EMFILE',
  [ETXTBSY]: 'ETXTBSY',
  [EFBIG]: 'EFBIG',
  [ENOSPC]: 'ENOSPC',
  [EROFS]: 'EROFS',
  [EDEADLK]: 'EDEADLK',
  [ENAMETOOLONG]: 'ENAMETOOLONG',
  [ELOOP]: 'ELOOP',
  [EOVERFLOW]: 'EOVERFLOW',
  [EOPNOTSUPP]: 'EOPNOTSUPP',
  [ETIMEDOUT]: 'ETIMEDOUT',
  [EDQUOT]: 'EDQUOT',
};

/** Symbolic name of a positive errno value, `E<decimal>` for one without a name. */
export function errnoName(errno: number): string {
  return NAMES[errno] ?? `E${errno}`;
}

/** Positive errno value of a symbolic name; throws on an unknown name. */
export function errnoValue(name: string): number {
  for (const key in NAMES) if (NAMES[key] === name) return Number(key);
  const decimal = /^E(\d+)$/.exec(name);
  if (decimal) return Number(decimal[1]);
  throw new Error(`unknown errno name ${name}`);
}

/** The error a failed call throws: `code` is the Linux name (`'ENOMEM'`), `errno` its number. */
export class VmError extends Error {
  readonly errno: number;
  readonly code: string;
  constructor(errno: number, what: string) {
    super(`${errnoName(errno)}: ${what}`);
    this.name = 'VmError';
    this.errno = errno;
    this.code = errnoName(errno);
  }
}

/** Throws a `VmError` when `ret` is a negative errno; returns `ret` otherwise. */
export function check(ret: number, what: string): number {
  if (ret < 0) throw new VmError(-ret, what);
  return ret;
}
