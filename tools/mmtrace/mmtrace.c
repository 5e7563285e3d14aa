/*
 * mmtrace: records linux-mm-trace v1 traces (shared/linux-traces/FORMAT.md) on the running kernel.
 *
 *   env -i setarch -R sh -c 'ulimit -s 8192; exec ./mmtrace PROFILE SEED NOPS DIR' > trace.jsonl
 *   ... ./mmtrace script 0 FILE DIR       (the ops listed in FILE, see script_next())
 *
 * Profiles: basic, file, mremap, mixed, stress, grows (FORMAT.md section 6) and the extra edge,
 * lock, thp (tools/mmtrace/README.md). Use tools/mmtrace/record.sh rather than running this directly.
 *
 * Creates the test files f0 (rw), f1 (rw, unaligned size), f2 (read-only) in DIR, opens
 * /proc/self/smaps, prints the header and the layout, then runs NOPS seeded random address-space
 * system calls (raw `syscall`, no libc wrappers) and prints each call with its result and the full
 * VMA list read back from smaps. It allocates nothing (static buffers only), uses no stdio and
 * writes every line with write(2), so the process's own mappings never change behind the trace.
 *
 * Safety: every fixed-address operation (MAP_FIXED*, munmap, mprotect, madvise, mlock, munlock,
 * mremap source and MREMAP_FIXED target, touch) covers only the arena and ranges returned by
 * successful mmap/mremap calls; touches only access pages that cannot fault fatally, except the
 * first access of a grows touch below a growsdown VMA, whose SIGSEGV is caught (EFAULT). After every
 * operation the recorder checks that its own initial VMAs still cover the same addresses with the
 * same perms, names, offsets and flags; it aborts (exit 2, message on stderr) otherwise.
 */
#include <stddef.h>
#include <stdint.h>

typedef uint64_t u64;
typedef int64_t i64;
typedef uint32_t u32;

#define PG 4096ULL
#define PMASK (PG - 1)
#define MIB (1ULL << 20)
#define TASK_SIZE 0x7ffffffff000ULL
#define ARENA_SIZE (256 * MIB)
#define MAXV 16384
#define MAXU 8192
#define MAXSHM 8192
#define GENERATOR "vmspace-mmtrace 1"

/* ---- raw system calls (x86_64) ---- */
enum {
	NR_read = 0, NR_write = 1, NR_open = 2, NR_close = 3, NR_stat = 4, NR_fstat = 5, NR_lseek = 8,
	NR_mmap = 9, NR_mprotect = 10, NR_munmap = 11, NR_brk = 12, NR_mremap = 25, NR_madvise = 28,
	NR_uname = 63, NR_getrlimit = 97, NR_geteuid = 107, NR_personality = 135, NR_fstatfs = 138,
	NR_munlock = 150, NR_exit_group = 231, NR_mlock2 = 325, NR_rt_sigaction = 13,
};

static long sc6(long n, long a, long b, long c, long d, long e, long f)
{
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	long ret;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}
#define sc1(n, a) sc6(n, (long)(a), 0, 0, 0, 0, 0)
#define sc2(n, a, b) sc6(n, (long)(a), (long)(b), 0, 0, 0, 0)
#define sc3(n, a, b, c) sc6(n, (long)(a), (long)(b), (long)(c), 0, 0, 0)

static int is_err(long r) { return r < 0 && r >= -4095; }

/* ---- Linux constants ---- */
#define PROT_READ 1
#define PROT_WRITE 2
#define PROT_EXEC 4
#define MAP_SHARED 1
#define MAP_PRIVATE 2
#define MAP_SHARED_VALIDATE 3
#define MAP_FIXED 0x10
#define MAP_ANONYMOUS 0x20
#define MAP_GROWSDOWN 0x100
#define MAP_LOCKED 0x2000
#define MAP_NORESERVE 0x4000
#define MAP_POPULATE 0x8000
#define MAP_STACK 0x20000
#define MAP_HUGETLB 0x40000
#define MAP_SYNC 0x80000
#define MAP_FIXED_NOREPLACE 0x100000
#define MAP_HUGE_SHIFT 26
#define MAP_HUGE_FIELD (0x3fULL << MAP_HUGE_SHIFT)
#define MAP_HUGE_2MB (21ULL << MAP_HUGE_SHIFT)
#define MAP_HUGE_32MB (25ULL << MAP_HUGE_SHIFT) /* a size x86 does not have */
#define PROT_GROWSDOWN 0x01000000
#define PROT_GROWSUP 0x02000000
#define MREMAP_MAYMOVE 1
#define MREMAP_FIXED 2
#define MREMAP_DONTUNMAP 4
#define MLOCK_ONFAULT 1
#define O_RDONLY 0
#define O_RDWR 2
#define O_CREAT 0100
#define O_TRUNC 01000
#define O_CLOEXEC 02000000
#define ADDR_NO_RANDOMIZE 0x0040000
#define RLIMIT_STACK 3
#define SIGSEGV 11
#define SA_SIGINFO 4
#define SA_RESTORER 0x04000000

struct kstat {
	u64 dev, ino, nlink;
	u32 mode, uid, gid, pad0;
	u64 rdev;
	i64 size, blksize, blocks;
	u64 times[6];
	i64 unused[3];
};

/* ---- small string helpers (no libc) ---- */
static size_t slen(const char *s)
{
	size_t n = 0;
	while (s[n]) n++;
	return n;
}
static int seq(const char *a, const char *b)
{
	while (*a && *a == *b) a++, b++;
	return *a == *b;
}
static int starts(const char *s, const char *p)
{
	while (*p)
		if (*s++ != *p++) return 0;
	return 1;
}
static void scopy(char *d, const char *s, size_t cap)
{
	size_t i = 0;
	while (s[i] && i + 1 < cap) d[i] = s[i], i++;
	d[i] = 0;
}
static void scat(char *d, const char *s, size_t cap)
{
	size_t n = slen(d);
	scopy(d + n, s, cap - n);
}
static char *utoa(u64 v, char *buf, int base)
{
	char tmp[24];
	int n = 0;
	do tmp[n++] = "0123456789abcdef"[v % (u64)base], v /= (u64)base;
	while (v);
	char *p = buf;
	while (n) *p++ = tmp[--n];
	*p = 0;
	return buf;
}

static void die(const char *msg, u64 detail)
{
	char b[512], num[24];
	b[0] = 0;
	scat(b, "mmtrace: ", sizeof b);
	scat(b, msg, sizeof b);
	scat(b, " (0x", sizeof b);
	scat(b, utoa(detail, num, 16), sizeof b);
	scat(b, ")\n", sizeof b);
	sc3(NR_write, 2, b, slen(b));
	sc1(NR_exit_group, 2);
	__builtin_unreachable();
}

/* ---- output: one line at a time into a static buffer, then write(2) ---- */
static char OB[64 << 20];
static size_t obn;

static void ob_flush(void)
{
	size_t done = 0;
	while (done < obn) {
		long r = sc3(NR_write, 1, OB + done, obn - done);
		if (r <= 0) die("write to stdout failed", (u64)-r);
		done += (size_t)r;
	}
	obn = 0;
}
static void oc(char c)
{
	if (obn >= sizeof OB) die("output line too long", obn);
	OB[obn++] = c;
}
static void os(const char *s)
{
	while (*s) oc(*s++);
}
static void ostr(const char *s) /* JSON string */
{
	oc('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') oc('\\'), oc((char)c);
		else if (c < 0x20) {
			char b[8];
			os("\\u00");
			utoa(c >> 4, b, 16), os(b);
			utoa(c & 15, b, 16), os(b);
		} else oc((char)c);
	}
	oc('"');
}
static void ohex(u64 v) /* "0x..." */
{
	char b[24];
	os("\"0x");
	os(utoa(v, b, 16));
	oc('"');
}
static void odec(i64 v)
{
	char b[24];
	if (v < 0) oc('-'), v = -v;
	os(utoa((u64)v, b, 10));
}
static void okey(const char *k) /* ,"k": */
{
	if (obn && OB[obn - 1] != '{' && OB[obn - 1] != '[') oc(',');
	oc('"');
	os(k);
	os("\":");
}

/* ---- reading files ---- */
static char SB[64 << 20];

static size_t read_fd(int fd, char *buf, size_t cap)
{
	if (sc3(NR_lseek, fd, 0, 0) < 0) die("lseek failed", (u64)fd);
	size_t n = 0;
	for (;;) {
		long r = sc3(NR_read, fd, buf + n, cap - 1 - n);
		if (r < 0) die("read failed", (u64)-r);
		if (r == 0) break;
		n += (size_t)r;
		if (n >= cap - 1) die("file too large for buffer", n);
	}
	buf[n] = 0;
	return n;
}
static size_t read_path(const char *path, char *buf, size_t cap)
{
	long fd = sc3(NR_open, path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0) {
		buf[0] = 0;
		return 0;
	}
	size_t n = read_fd((int)fd, buf, cap);
	sc1(NR_close, fd);
	return n;
}

/* ---- PRNG: xoshiro256** seeded by splitmix64 ---- */
static u64 rs[4];
static u64 splitmix(u64 *x)
{
	u64 z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}
static u64 rotl(u64 x, int k) { return (x << k) | (x >> (64 - k)); }
static u64 rnext(void)
{
	u64 r = rotl(rs[1] * 5, 7) * 9, t = rs[1] << 17;
	rs[2] ^= rs[0], rs[3] ^= rs[1], rs[1] ^= rs[2], rs[0] ^= rs[3], rs[2] ^= t, rs[3] = rotl(rs[3], 45);
	return r;
}
static u64 rnd(u64 n) { return n ? rnext() % n : 0; } /* [0, n) */
static int chance(u32 pct) { return rnd(100) < pct; }
static u64 rpages(u64 n) { return (1 + rnd(n)) * PG; } /* 1..n pages */

/* ---- VMA snapshots parsed from /proc/self/smaps ---- */
enum { K_ANON, K_FILE, K_SHM, K_EXE, K_LIB, K_SPECIAL, K_HEAP };

struct vma {
	u64 start, end, off, ino, anon_kb;
	u32 maj, min;
	int kind, idx; /* idx: test file index (K_FILE) or shmem object number (K_SHM) */
	char perms[5];
	char name[96];
	char flags[128];
};

static struct vma S[MAXV], INIT[MAXV];
static int ns, ninit;

/* test files */
static const char *FID[3] = {"f0", "f1", "f2"};
static int ffd[3];
static u64 fsize[3], fino[3];
static u32 fmajor[3], fminor[3];
static char ffsname[3][16];
static u64 exe_ino;
static u32 exe_maj, exe_min;

/* shared anonymous objects: inode -> number, size */
static u64 shm_ino[MAXSHM], shm_size[MAXSHM];
static int nshm;
static u64 pending_shm_addr, pending_shm_size; /* a new object created by this op */

static void dev_split(u64 d, u32 *maj, u32 *min)
{
	*maj = (u32)(((d >> 8) & 0xfff) | ((d >> 32) & ~0xfffULL));
	*min = (u32)((d & 0xff) | ((d >> 12) & ~0xffULL));
}

static const char *parse_hex(const char *p, u64 *v)
{
	u64 x = 0;
	for (;; p++) {
		char c = *p;
		if (c >= '0' && c <= '9') x = x * 16 + (u64)(c - '0');
		else if (c >= 'a' && c <= 'f') x = x * 16 + (u64)(c - 'a' + 10);
		else break;
	}
	*v = x;
	return p;
}
static const char *parse_dec(const char *p, u64 *v)
{
	u64 x = 0;
	while (*p == ' ') p++;
	while (*p >= '0' && *p <= '9') x = x * 10 + (u64)(*p++ - '0');
	*v = x;
	return p;
}

static int shm_lookup(u64 ino)
{
	for (int i = nshm - 1; i >= 0; i--)
		if (shm_ino[i] == ino) return i;
	return -1;
}

static void classify(struct vma *v, const char *path, size_t plen)
{
	char p[512];
	if (plen >= sizeof p) plen = sizeof p - 1;
	for (size_t i = 0; i < plen; i++) p[i] = path[i];
	p[plen] = 0;
	v->idx = 0;
	if (plen == 0) {
		v->kind = K_ANON;
		v->name[0] = 0;
		return;
	}
	if (p[0] == '[') {
		v->kind = seq(p, "[heap]") ? K_HEAP : K_SPECIAL;
		scopy(v->name, p, sizeof v->name);
		return;
	}
	if (starts(p, "/dev/zero") && v->maj == 0) {
		int n = shm_lookup(v->ino);
		if (n < 0) {
			if (!(pending_shm_addr >= v->start && pending_shm_addr < v->end))
				die("unknown shared anonymous object", v->start);
			if (nshm >= MAXSHM) die("too many shmem objects", nshm);
			n = nshm++;
			shm_ino[n] = v->ino;
			shm_size[n] = pending_shm_size;
			pending_shm_addr = 0;
		}
		char num[24];
		v->kind = K_SHM;
		v->idx = n;
		scopy(v->name, "anon_shared:", sizeof v->name);
		scat(v->name, utoa((u64)n, num, 10), sizeof v->name);
		return;
	}
	for (int i = 0; i < 3; i++)
		if (v->ino == fino[i] && v->maj == fmajor[i] && v->min == fminor[i]) {
			v->kind = K_FILE;
			v->idx = i;
			scopy(v->name, "file:", sizeof v->name);
			scat(v->name, FID[i], sizeof v->name);
			return;
		}
	if (v->ino == exe_ino && v->maj == exe_maj && v->min == exe_min) {
		v->kind = K_EXE;
		scopy(v->name, "exe", sizeof v->name);
		return;
	}
	const char *b = p;
	for (const char *q = p; *q; q++)
		if (*q == '/') b = q + 1;
	v->kind = K_LIB;
	scopy(v->name, "lib:", sizeof v->name);
	scat(v->name, b, sizeof v->name);
}

static int smaps_fd;

static void snapshot(void)
{
	size_t n = read_fd(smaps_fd, SB, sizeof SB);
	const char *p = SB, *end = SB + n;
	ns = 0;
	while (p < end) {
		const char *nl = p;
		while (nl < end && *nl != '\n') nl++;
		char c = *p;
		if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) {
			if (ns >= MAXV) die("too many VMAs", ns);
			struct vma *v = &S[ns++];
			u64 maj, min;
			const char *q = parse_hex(p, &v->start);
			if (*q++ != '-') die("bad smaps line", (u64)ns);
			q = parse_hex(q, &v->end);
			if (*q++ != ' ') die("bad smaps line", (u64)ns);
			for (int i = 0; i < 4; i++) v->perms[i] = *q++;
			v->perms[4] = 0;
			q = parse_hex(q + 1, &v->off);
			q = parse_hex(q + 1, &maj);
			q = parse_hex(q + 1, &min);
			q = parse_dec(q, &v->ino);
			v->maj = (u32)maj, v->min = (u32)min;
			while (q < nl && *q == ' ') q++;
			v->anon_kb = 0;
			v->flags[0] = 0;
			classify(v, q, (size_t)(nl - q));
		} else if (ns && starts(p, "Anonymous:")) {
			parse_dec(p + 10, &S[ns - 1].anon_kb);
		} else if (ns && starts(p, "VmFlags:")) {
			const char *q = p + 8, *e = nl;
			while (q < e && *q == ' ') q++;
			while (e > q && e[-1] == ' ') e--;
			size_t len = (size_t)(e - q);
			if (len >= sizeof S[0].flags) die("VmFlags too long", len);
			char *f = S[ns - 1].flags;
			for (size_t i = 0; i < len; i++) f[i] = q[i];
			f[len] = 0;
		}
		p = nl + 1;
	}
	for (int i = 1; i < ns; i++)
		if (S[i].start < S[i - 1].end && S[i].start != 0xffffffffff600000ULL)
			die("smaps not sorted", S[i].start);
	if (pending_shm_addr) die("new shared anonymous object not found", pending_shm_addr);
}

static int find_vma(u64 a) /* index of the VMA containing a, or -1 */
{
	int lo = 0, hi = ns - 1;
	while (lo <= hi) {
		int mid = (lo + hi) / 2;
		if (a < S[mid].start) hi = mid - 1;
		else if (a >= S[mid].end) lo = mid + 1;
		else return mid;
	}
	return -1;
}

static int has_offset(int kind) { return kind != K_ANON && kind != K_HEAP && kind != K_SPECIAL; }

/*
 * The zero-page probe (FORMAT.md 3.1, header `zero_page`): one PROT_READ private anonymous page in
 * the middle of the (free) arena, read once; smaps shows `Anonymous: 0 kB` if the read mapped the
 * shared zero page, more if the kernel allocated a page (and an anon_vma). The page is unmapped
 * again (its page table goes with it: nothing else maps that 2 MiB region) before the layout is
 * taken. Returns 1 when the kernel has the zero page.
 */
static int probe_zero_page(u64 at)
{
	long a = sc6(NR_mmap, (long)at, (long)PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (is_err(a) || (u64)a != at) die("zero-page probe: mmap failed", (u64)a);
	(void)*(volatile const char *)a;
	snapshot();
	int k = find_vma(at);
	if (k < 0) die("zero-page probe: page not in smaps", at);
	u64 kb = S[k].anon_kb;
	if (sc2(NR_munmap, a, PG) < 0) die("zero-page probe: munmap failed", at);
	return kb == 0;
}

/* The recorder's own initial VMAs must still cover the same pages, identically. */
static void verify_initial(void)
{
	for (int i = 0; i < ninit; i++) {
		const struct vma *v = &INIT[i];
		if (seq(v->name, "[stack]")) {
			int k = find_vma(v->end - 1);
			if (k < 0 || !seq(S[k].name, "[stack]") || S[k].end != v->end) die("[stack] changed", v->end);
			continue;
		}
		u64 a = v->start;
		while (a < v->end) {
			int k = find_vma(a);
			if (k < 0) die("initial VMA lost", a);
			const struct vma *w = &S[k];
			if (!seq(w->perms, v->perms) || !seq(w->name, v->name) || !seq(w->flags, v->flags))
				die("initial VMA changed", a);
			if (has_offset(v->kind) && w->off + (a - w->start) != v->off + (a - v->start))
				die("initial VMA offset changed", a);
			a = w->end;
		}
	}
}

/* ---- the region fixed-address operations may cover: arena + returned ranges ---- */
static u64 us[MAXU], ue[MAXU];
static int nu;
static u64 arena_start, arena_end, initial_brk, cur_brk;

static void u_add(u64 s, u64 e)
{
	s &= ~PMASK;
	e = (e + PMASK) & ~PMASK;
	if (e <= s) return;
	int i = 0;
	while (i < nu && ue[i] < s) i++; /* first interval that touches or follows [s,e) */
	int j = i;
	while (j < nu && us[j] <= e) {
		if (us[j] < s) s = us[j];
		if (ue[j] > e) e = ue[j];
		j++;
	}
	int removed = j - i;
	if (removed == 0) {
		if (nu >= MAXU) die("too many ranges", nu);
		for (int k = nu; k > i; k--) us[k] = us[k - 1], ue[k] = ue[k - 1];
		nu++;
	} else {
		for (int k = i + 1; k + removed - 1 < nu; k++) us[k] = us[k + removed - 1], ue[k] = ue[k + removed - 1];
		nu -= removed - 1;
	}
	us[i] = s, ue[i] = e;
}
static int u_find(u64 a)
{
	for (int i = 0; i < nu; i++)
		if (us[i] <= a && a < ue[i]) return i;
	return -1;
}
/* Page-rounded [a, a+len) (one page if len is 0) lies inside the allowed region? */
static int allowed(u64 a, u64 len)
{
	u64 s = a & ~PMASK, e = len ? (a + len + PMASK) & ~PMASK : s + PG;
	if (e <= s || a + len < a) return 0;
	int k = u_find(s);
	return k >= 0 && e <= ue[k];
}

/* candidate VMAs (clipped to the allowed region) and free holes inside it */
static int cand[MAXV], ncand;
static u64 cs[MAXV], ce[MAXV];
static u64 hs[MAXV], he[MAXV];
static int nh;

static void derive(void)
{
	ncand = nh = 0;
	for (int k = 0; k < nu; k++) {
		u64 cur = us[k];
		for (int i = 0; i < ns; i++) {
			const struct vma *v = &S[i];
			if (v->end <= us[k] || v->start >= ue[k]) continue;
			u64 s = v->start > us[k] ? v->start : us[k];
			u64 e = v->end < ue[k] ? v->end : ue[k];
			if (ncand < MAXV) cand[ncand] = i, cs[ncand] = s, ce[ncand] = e, ncand++;
			if (s > cur && nh < MAXV) hs[nh] = cur, he[nh] = s, nh++;
			if (e > cur) cur = e;
		}
		if (cur < ue[k] && nh < MAXV) hs[nh] = cur, he[nh] = ue[k], nh++;
	}
}

/* ---- profiles ---- */
enum {
	G_MMAP_ANON, G_MMAP_FILE, G_MUNMAP, G_MPROTECT, G_MREMAP, G_BRK, G_MADVISE, G_MLOCK, G_MUNLOCK, G_TOUCH,
	/* grows only (FORMAT.md section 6): MAP_GROWSDOWN mmap, mappings placed next to a growsdown VMA,
	 * touches starting below one, PROT_GROWSDOWN/UP, munmap/mremap/mprotect of parts of one,
	 * MAP_STACK / MAP_HUGETLB */
	G_GD_MMAP, G_NEAR_GD, G_GD_TOUCH, G_GROWS_PROT, G_GD_PART, G_STACK_HUGE, NG
};

struct profile {
	const char *name;
	int w[NG];
	u32 err_pct;
	u32 big_pct;   /* multi-MiB lengths */
	u64 big_pages; /* upper bound of random multi-MiB lengths */
	int extras;    /* MAP_NORESERVE/POPULATE/LOCKED, MLOCK_ONFAULT, unaligned hints */
	int edge;      /* 1: mremap edge cases (multi-VMA, partial, old_len 0, move back, exact fit), runs
	                * of VMAs, THP touches, MADV_HUGEPAGE, 2 MiB sizes and offsets, file offsets
	                * near 2^63; 2: the same without move back, exact fit and huge offsets */
	int errs_all;  /* deliberate errors of every kind (else only the profile's kinds) */
	u32 thp_pct;   /* touches of 2 MiB-aligned blocks, MADV_HUGEPAGE/NOHUGEPAGE/DONTNEED advice */
};

static const struct profile PROFILES[] = {
	{"basic", {40, 0, 25, 35, 0, 0, 0, 0, 0, 0}, 3, 8, 4096, 0, 0, 0, 0},
	{"file", {12, 45, 16, 17, 0, 0, 0, 0, 0, 10}, 5, 8, 4096, 0, 0, 0, 0},
	{"mremap", {22, 10, 8, 8, 42, 0, 0, 0, 0, 10}, 5, 8, 4096, 0, 0, 0, 0},
	{"mixed", {16, 9, 10, 12, 11, 5, 11, 5, 4, 9}, 10, 8, 4096, 1, 0, 1, 0},
	{"stress", {16, 9, 10, 12, 11, 5, 11, 5, 4, 9}, 10, 18, 16384, 1, 0, 1, 0},
	{"edge", {12, 8, 6, 8, 30, 3, 13, 8, 4, 8}, 10, 12, 8192, 1, 1, 1, 30},
	{"lock", {14, 14, 6, 10, 10, 2, 20, 14, 10, 10}, 10, 10, 8192, 1, 2, 1, 30},
	{"thp", {20, 4, 10, 14, 16, 0, 16, 4, 2, 14}, 3, 35, 8192, 1, 2, 1, 60},
	{"grows", {12, 4, 8, 8, 6, 0, 0, 0, 0, 8, 14, 8, 12, 8, 8, 8}, 5, 8, 4096, 0, 0, 0, 0},
	{"script", {0}, 0, 0, 4096, 0, 0, 0, 0}, /* ops from a file, see script_next() */
};
static const struct profile *P;

/* ---- the operation being generated ---- */
enum { OP_MMAP, OP_MUNMAP, OP_MPROTECT, OP_MREMAP, OP_BRK, OP_MADVISE, OP_MLOCK, OP_MUNLOCK, OP_TOUCH };
static const char *OPNAME[] = {"mmap", "munmap", "mprotect", "mremap", "brk", "madvise", "mlock", "munlock", "touch"};

static struct {
	int op;
	u64 addr, len, prot, flags, off, old_addr, old_len, new_len, new_addr, advice;
	int fd; /* test file index or -1 */
	int write;
	int grows; /* a touch starting in the free gap below a growsdown VMA (its first access may fault) */
} O;

/* ---- address and length choice ---- */
static u64 big_len(void)
{
	if (chance(50)) return (1 + rnd(4)) * 2 * MIB; /* exactly 2, 4, 6 or 8 MiB */
	return (128 + rnd(P->big_pages - 128)) * PG;
}
static u64 pick_len(void)
{
	if (chance(P->big_pct)) return big_len();
	return chance(50) ? rpages(8) : rpages(64);
}
static u64 jitter(u64 a)
{
	if (chance(35)) {
		u64 d = rpages(4);
		return chance(50) ? a + d : a - d;
	}
	return a;
}
static u64 pick_addr(void)
{
	u32 r = (u32)rnd(100);
	if (ncand && r < 55) {
		u64 k = rnd((u64)ncand);
		return jitter(chance(50) ? cs[k] : ce[k]);
	}
	if (r < 65) {
		u64 k = rnd((u64)nu);
		return jitter(chance(50) ? us[k] : ue[k]);
	}
	u64 d = 1 + rnd(1ULL << (2 + rnd(15))); /* pages below the top of the arena, log-uniform */
	return arena_end - d * PG;
}
static u64 next_boundary(u64 a)
{
	u64 best = 0;
	for (int i = 0; i < ns; i++) {
		u64 b = S[i].start > a ? S[i].start : S[i].end > a ? S[i].end : 0;
		if (b && (!best || b < best)) best = b;
	}
	return best;
}
/* A page-aligned range inside the allowed region, biased to VMA boundaries. */
static int pick_range(u64 *pa, u64 *pl)
{
	u32 exact = P->edge ? 30 : 20;
	for (int t = 0; t < 64; t++) {
		u64 a, l;
		if (ncand && chance(exact)) {
			u64 k = rnd((u64)ncand);
			a = cs[k], l = ce[k] - cs[k];
		} else {
			a = pick_addr(), l = pick_len();
			if (chance(30)) a -= l;
			if (chance(10)) {
				u64 b = next_boundary(a);
				if (b > a) l = b - a;
			}
		}
		if (allowed(a, l)) {
			*pa = a, *pl = l;
			return 1;
		}
		int k = u_find(a);
		if (k >= 0 && chance(50)) {
			*pa = a, *pl = ue[k] - a;
			return 1;
		}
	}
	return 0;
}
/* A range of mapped pages: from a VMA boundary or page, up to the VMA end, the end of the run of
 * contiguous VMAs, or a few pages (never across a hole). */
static int pick_mapped_range(u64 *pa, u64 *pl)
{
	if (!ncand) return 0;
	int k = (int)rnd((u64)ncand), j = k;
	while (j + 1 < ncand && cs[j + 1] == ce[j]) j++;
	u64 a = chance(50) ? cs[k] : cs[k] + rnd((ce[k] - cs[k]) / PG) * PG;
	u32 r = (u32)rnd(100);
	u64 l = r < 40 ? ce[k] - a : r < 65 ? ce[j] - a : rpages(64);
	if (l > ce[j] - a) l = ce[j] - a;
	*pa = a, *pl = l;
	return 1;
}
/* A free range inside the allowed region (a hole), of at least len if possible. */
static int pick_free(u64 len, u64 *pa)
{
	for (int t = 0; t < 16 && nh; t++) {
		u64 k = rnd((u64)nh);
		if (he[k] - hs[k] < len) continue;
		u64 slots = (he[k] - hs[k] - len) / PG + 1;
		u32 r = (u32)rnd(100);
		*pa = r < 35 ? hs[k] : r < 70 ? he[k] - len : hs[k] + rnd(slots) * PG;
		return 1;
	}
	return 0;
}
/* A range inside a hole, or spanning a hole and mapped pages (ENOMEM cases). */
static int pick_hole_range(u64 *pa, u64 *pl, int spanning)
{
	for (int t = 0; t < 16 && nh; t++) {
		u64 k = rnd((u64)nh), a, e;
		if (!spanning) {
			a = hs[k] + rnd((he[k] - hs[k]) / PG) * PG;
			e = a + rpages(16);
			if (e > he[k]) e = he[k];
		} else {
			u32 r = (u32)rnd(3);
			a = r == 0 ? hs[k] - rpages(8) : r == 1 ? hs[k] + rnd((he[k] - hs[k]) / PG) * PG : hs[k];
			e = r == 2 ? he[k] + rpages(8) : (chance(50) ? he[k] + rpages(8) : a + rpages(8) + PG);
			if (r == 0 && e <= hs[k]) e = hs[k] + PG;
		}
		if (e > a && allowed(a, e - a)) {
			*pa = a, *pl = e - a;
			return 1;
		}
	}
	return 0;
}
static u64 unalign(u64 a) { return a + 1 + rnd(PG - 1); }
static u64 maybe_unaligned_len(u64 l) { return (l > PG && chance(5)) ? l - 1 - rnd(PG - 1) : l; }

static u64 pick_prot(void)
{
	u32 r = (u32)rnd(100);
	return r < 45 ? 3 : r < 65 ? 1 : r < 75 ? 5 : r < 82 ? 7 : r < 88 ? 4 : r < 95 ? 0 : 2;
}
static u64 bad_prot_bits(void)
{
	static const u64 b[] = {0x10, 0x20, 0x40, 0x80, 0x100};
	return b[rnd(5)];
}
static int cand_kind(int kind, int idx, int need_shared) /* index into cand[] or -1 */
{
	int found[64], n = 0;
	for (int k = 0; k < ncand && n < 64; k++) {
		const struct vma *v = &S[cand[k]];
		if (v->kind == kind && (idx < 0 || v->idx == idx) && (!need_shared || v->perms[3] == 's')) found[n++] = k;
	}
	return n ? found[rnd((u64)n)] : -1;
}

/* ---- generators: fill O; return 0 to retry ---- */
static int range_or_vma(int exact_pct)
{
	if (P->edge && ncand && chance(30)) { /* a whole run of contiguous VMAs: re-merges */
		int k = (int)rnd((u64)ncand), j = k;
		while (j + 1 < ncand && cs[j + 1] == ce[j]) j++;
		O.addr = cs[k], O.len = ce[j] - cs[k];
		return 1;
	}
	if (ncand && chance((u32)exact_pct)) {
		u64 k = rnd((u64)ncand);
		O.addr = cs[k], O.len = ce[k] - cs[k];
		return 1;
	}
	if (chance(50) && pick_mapped_range(&O.addr, &O.len)) return 1;
	if (!pick_range(&O.addr, &O.len)) return 0;
	O.len = maybe_unaligned_len(O.len);
	return 1;
}


static void mmap_extras(void)
{
	if (!P->extras) return;
	if (chance(8)) O.flags |= MAP_NORESERVE;
	if (chance(5)) O.flags |= MAP_POPULATE;
	if (chance(5)) O.flags |= MAP_LOCKED;
}

static int mmap_placement(void) /* addr/len/fixed flags; returns 0 on failure */
{
	u32 r = (u32)rnd(100);
	u64 a, l;
	if (r < 33) { /* kernel placement, no hint */
		O.addr = 0;
		O.len = chance(P->edge ? 25 : 10) ? (1 + rnd(4)) * 2 * MIB : pick_len();
		if (chance(5)) O.len = maybe_unaligned_len(O.len + PG);
		return 1;
	}
	if (r < 48) { /* hint */
		if (!pick_range(&a, &l)) return 0;
		O.addr = (P->extras && chance(40)) ? unalign(a) : a;
		O.len = chance(70) ? l : pick_len();
		return 1;
	}
	if (r < 85) {
		if (!pick_range(&a, &l)) return 0;
		O.addr = a, O.len = l, O.flags |= MAP_FIXED;
		return 1;
	}
	l = pick_len();
	if (chance(70) && pick_free(l, &a)) {
		O.addr = a, O.len = l;
	} else {
		if (!pick_range(&a, &l)) return 0;
		O.addr = a, O.len = l;
	}
	O.flags |= MAP_FIXED_NOREPLACE;
	return 1;
}

/* deliberate mmap errors shared by anonymous and file mappings */
static int mmap_error(int file)
{
	u64 a, l;
	u32 r = (u32)rnd(file ? 13 : 8);
	if (r == 11 && P->edge != 1) r = 12; /* offsets near 2^63: only in the edge profile */
	switch (r) {
	case 0: /* unaligned MAP_FIXED address */
		if (!pick_range(&a, &l)) return 0;
		O.addr = unalign(a), O.len = l, O.flags = (O.flags & ~(u64)(MAP_FIXED_NOREPLACE)) | MAP_FIXED;
		return 1;
	case 1: /* zero length */
		O.len = 0;
		return 1;
	case 2: /* MAP_FIXED_NOREPLACE over a mapping */
	{
		if (!ncand) return 0;
		u64 k = rnd((u64)ncand);
		a = chance(60) ? cs[k] : cs[k] + rnd((ce[k] - cs[k]) / PG) * PG;
		l = pick_len();
		if (!allowed(a, l)) l = ce[k] - a;
		O.addr = a, O.len = l, O.flags = (O.flags & ~(u64)MAP_FIXED) | MAP_FIXED_NOREPLACE;
		return 1;
	}
	case 3: /* no mapping type */
		O.flags &= ~3ULL;
		return 1;
	case 4: /* MAP_SHARED_VALIDATE with an unknown flag */
		O.flags = (O.flags & ~3ULL) | MAP_SHARED_VALIDATE | 0x200000;
		return 1;
	case 5: /* unaligned offset */
		O.off = (O.off & ~PMASK) + 1 + rnd(PG - 1);
		return 1;
	case 6: /* fd -1 without MAP_ANONYMOUS */
		O.flags &= ~(u64)MAP_ANONYMOUS;
		O.fd = -1;
		return 1;
	case 7: /* MAP_SHARED_VALIDATE|MAP_SYNC */
		O.flags = (O.flags & ~3ULL) | MAP_SHARED_VALIDATE | MAP_SYNC;
		return 1;
	case 8: case 9: case 10: /* MAP_SHARED|PROT_WRITE on the read-only file */
		O.fd = 2;
		O.flags = (O.flags & ~3ULL) | MAP_SHARED;
		O.prot |= PROT_WRITE;
		return 1;
	case 11: /* offsets near the largest file size (MAX_LFS_FILESIZE = 2^63 - 1) */
		switch (rnd(4)) {
		case 0: O.off = 0x8000000000000000ULL; break;
		case 1: O.off = 0x7fffffffffff0000ULL; break;
		case 2: O.off = 0x7fffffffffff0000ULL, O.len = 0x10000; break; /* off + len = 2^63 */
		default: O.off = 0x7ffffffffffff000ULL, O.len = PG; break;
		}
		return 1;
	default: /* MAP_SHARED_VALIDATE|MAP_SYNC on a file without DAX */
		O.flags = (O.flags & ~3ULL) | MAP_SHARED_VALIDATE | MAP_SYNC;
		return 1;
	}
}

static int gen_mmap_anon(int err)
{
	O.op = OP_MMAP, O.fd = -1, O.off = 0;
	O.flags = (chance(15) ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS;
	O.prot = pick_prot();
	if (!mmap_placement()) return 0;
	mmap_extras();
	return err ? mmap_error(0) : 1;
}

static int gen_mmap_file(int err)
{
	O.op = OP_MMAP;
	u32 r = (u32)rnd(100);
	O.fd = r < 30 ? 0 : r < 75 ? 1 : 2;
	int shared = chance(45);
	O.flags = shared ? (chance(5) ? MAP_SHARED_VALIDATE : MAP_SHARED) : MAP_PRIVATE;
	O.prot = pick_prot();
	if (O.fd == 2 && shared) O.prot &= ~(u64)PROT_WRITE;
	u64 fpages = (fsize[O.fd] + PMASK) / PG;
	r = (u32)rnd(100);
	u32 thp = P->edge ? 25 : 12;
	if (r < 40) O.off = 0;
	else if (r < 70) O.off = rnd(fpages + 1) * PG;
	else if (r < 100 - thp) O.off = rnd(1024) * PG;
	else O.off = (512 * (1 + rnd(2)) - rnd(16)) * PG; /* near a 2 MiB file offset */
	if (!mmap_placement()) return 0;
	if (chance(15) && fpages * PG > O.off && !(O.flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)))
		O.len = fpages * PG - O.off;
	if (chance(P->edge ? 15 : 5) && !(O.flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)))
		O.len = (2 + rnd(3)) * 2 * MIB + rnd(64) * PG; /* THP-aligned file placement */
	mmap_extras();
	return err ? mmap_error(1) : 1;
}

static int gen_munmap(int err)
{
	O.op = OP_MUNMAP;
	if (!range_or_vma(15)) return 0;
	if (err) {
		if (chance(50)) O.addr = unalign(O.addr);
		else O.len = 0;
	}
	return 1;
}

static int gen_mprotect(int err)
{
	O.op = OP_MPROTECT;
	O.prot = pick_prot();
	if (!range_or_vma(30)) return 0;
	if (!err) return 1;
	switch (rnd(5)) {
	case 0: O.addr = unalign(O.addr); return 1;
	case 1: O.prot |= bad_prot_bits(); return 1;
	case 2: return pick_hole_range(&O.addr, &O.len, 1);
	case 3: return pick_hole_range(&O.addr, &O.len, 0);
	default: {
		int k = chance(50) ? cand_kind(K_FILE, 2, 1) : -1;
		if (k < 0) {
			O.prot |= bad_prot_bits();
			return 1;
		}
		O.addr = cs[k], O.len = ce[k] - cs[k], O.prot = PROT_READ | PROT_WRITE;
		return 1;
	}
	}
}

/* The last successful moving mremap (for the edge profile's move-back case). */
static u64 moved_from, moved_to, moved_len;

/* edge: move the last moved range back (pgoff and anon_vma match the old neighbours again), or
 * move a piece of a VMA so that it exactly fills a hole (merges on both sides). */
static int gen_mremap_edge(void)
{
	O.op = OP_MREMAP;
	O.flags = MREMAP_MAYMOVE | MREMAP_FIXED;
	if (moved_len && chance(50)) {
		O.old_addr = moved_to, O.old_len = O.new_len = moved_len, O.new_addr = moved_from;
		return 1;
	}
	if (!nh || !ncand) return 0;
	u64 h = rnd((u64)nh), k = rnd((u64)ncand), size = he[h] - hs[h];
	if (ce[k] - cs[k] < size) return 0;
	O.old_addr = chance(50) ? cs[k] : ce[k] - size;
	O.old_len = O.new_len = size, O.new_addr = hs[h];
	return 1;
}

static int gen_mremap(int err)
{
	O.op = OP_MREMAP;
	O.new_addr = 0;
	if (P->edge == 1 && !err && chance(20)) return gen_mremap_edge();
	u64 a, l;
	int multi = chance(P->edge ? 12 : 4);
	if (!ncand || multi || chance(15)) {
		if (!pick_range(&a, &l)) return 0;
	} else {
		u64 k = rnd((u64)ncand);
		a = cs[k], l = ce[k] - cs[k];
		if (chance(P->edge ? 35 : 25) && l > PG) { /* a part of the VMA */
			u64 pages = l / PG, off = rnd(pages);
			if (chance(40)) off = 0;
			a += off * PG;
			l = rpages(pages - off);
		}
	}
	O.old_addr = a, O.old_len = l;
	u32 r = (u32)rnd(100);
	if (r < 28) O.new_len = l;
	else if (r < 72) O.new_len = chance(12) ? l + big_len() : l + rpages(16);
	else O.new_len = l > PG ? rpages(l / PG - 1) : l;
	r = (u32)rnd(100);
	if (r < 25) O.flags = 0;
	else if (r < 58) O.flags = MREMAP_MAYMOVE;
	else if (r < 82) O.flags = MREMAP_MAYMOVE | MREMAP_FIXED;
	else if (r < 92) O.flags = MREMAP_MAYMOVE | MREMAP_DONTUNMAP;
	else O.flags = MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP;
	if ((O.flags & MREMAP_DONTUNMAP) && chance(90)) O.new_len = O.old_len;
	if (multi) O.flags = MREMAP_MAYMOVE | MREMAP_FIXED, O.new_len = O.old_len;
	int v = find_vma(a);
	if (v >= 0 && S[v].perms[3] == 's' && chance(P->edge ? 25 : 8)) { /* duplicate a shared mapping */
		O.old_len = 0;
		O.new_len = chance(50) ? S[v].end - a : rpages(16);
		O.flags = chance(50) ? MREMAP_MAYMOVE : MREMAP_MAYMOVE | MREMAP_FIXED;
	}
	if (O.flags & MREMAP_FIXED) {
		u64 t;
		if (chance(65) && pick_free(O.new_len, &t)) O.new_addr = t;
		else if (pick_range(&t, &l)) O.new_addr = t;
		else return 0;
	}
	if (!err) return 1;
	switch (rnd(8)) {
	case 0: O.old_addr = unalign(O.old_addr); return 1;
	case 1: /* MREMAP_FIXED without MREMAP_MAYMOVE */
		O.flags = MREMAP_FIXED;
		if (!O.new_addr && !pick_free(O.new_len, &O.new_addr)) return 0;
		return 1;
	case 2: /* MREMAP_DONTUNMAP with differing lengths */
		O.flags = MREMAP_MAYMOVE | MREMAP_DONTUNMAP;
		if (O.new_len == O.old_len) O.new_len = O.old_len + rpages(8);
		return 1;
	case 3: O.new_len = 0; return 1;
	case 4: /* overlapping MREMAP_FIXED ranges */
		O.flags = MREMAP_MAYMOVE | MREMAP_FIXED;
		O.new_addr = O.old_addr + (chance(50) ? 0 : rnd(O.old_len / PG + 1) * PG);
		if (!O.old_len) O.old_len = PG;
		return 1;
	case 5: O.flags |= chance(50) ? 0x8 : 0x10; return 1;
	default: /* unmapped source */
		if (!pick_hole_range(&O.old_addr, &O.old_len, 0)) return 0;
		if (O.new_len == 0) O.new_len = O.old_len;
		return 1;
	}
}

static int gen_brk(int err)
{
	(void)err;
	O.op = OP_BRK;
	u32 r = (u32)rnd(100);
	u64 a;
	if (r < 10) a = 0;
	else if (r < 25) a = initial_brk;
	else if (r < 50) a = cur_brk + rpages(16);
	else if (r < 65) a = cur_brk > initial_brk + 16 * PG ? cur_brk - rpages(16) : initial_brk;
	else if (r < 82) a = initial_brk + rnd(64) * PG;
	else if (r < 94) a = initial_brk + rnd(64 * PG);
	else a = initial_brk + big_len();
	O.addr = (a && a < initial_brk) ? initial_brk : a;
	return 1;
}

/* The first readable or writable private anonymous VMA that covers a whole 2 MiB-aligned block
 * (a THP region) inside the allowed region: its cand index, the block address in *pa. */
static int aligned_block(u64 *pa)
{
	for (int k = 0; k < ncand; k++) {
		const struct vma *v = &S[cand[k]];
		if (v->kind != K_ANON || (v->perms[0] != 'r' && v->perms[1] != 'w')) continue;
		u64 a = (cs[k] + 2 * MIB - 1) & ~(2 * MIB - 1);
		if (a + 2 * MIB > ce[k]) continue;
		*pa = a;
		return k;
	}
	return -1;
}

static const char *MADV[] = {"MADV_NORMAL", "MADV_RANDOM", "MADV_SEQUENTIAL", "MADV_WILLNEED", "MADV_DONTNEED",
	"MADV_FREE", "MADV_DONTFORK", "MADV_DOFORK", "MADV_HUGEPAGE", "MADV_NOHUGEPAGE", "MADV_DONTDUMP", "MADV_DODUMP",
	"MADV_WIPEONFORK", "MADV_KEEPONFORK", "MADV_POPULATE_READ", "MADV_POPULATE_WRITE"};
static const u64 MADVV[] = {0, 1, 2, 3, 4, 8, 10, 11, 14, 15, 16, 17, 18, 19, 22, 23};

static int gen_madvise(int err)
{
	O.op = OP_MADVISE;
	O.advice = MADVV[rnd(16)];
	if (P->thp_pct && chance(P->thp_pct * 5 / 6)) { /* MADV_HUGEPAGE / NOHUGEPAGE / DONTNEED */
		u32 r = (u32)rnd(100);
		O.advice = r < 60 ? 14 : r < 80 ? 15 : 4;
		u64 a;
		if (O.advice == 4 && P->thp_pct >= 60 && chance(50) && aligned_block(&a) >= 0) {
			O.addr = a, O.len = 2 * MIB; /* a whole THP region: its page table is freed */
			return 1;
		}
	}
	if (!range_or_vma(35)) return 0;
	if (!err) return 1;
	switch (rnd(3)) {
	case 0: {
		static const u64 bad[] = {5, 6, 7, 0x3039, 0x68};
		O.advice = bad[rnd(5)];
		return 1;
	}
	case 1: O.addr = unalign(O.addr); return 1;
	default: return pick_hole_range(&O.addr, &O.len, 1);
	}
}

static int gen_mlock(int err)
{
	O.op = OP_MLOCK;
	O.flags = (P->extras && chance(20)) ? MLOCK_ONFAULT : 0;
	if (!range_or_vma(40)) return 0;
	if (!err) return 1;
	if (chance(50)) {
		static const u64 bad[] = {2, 3, 8, 0x10};
		O.flags = bad[rnd(4)];
		return 1;
	}
	return pick_hole_range(&O.addr, &O.len, 1);
}

static int gen_munlock(int err)
{
	O.op = OP_MUNLOCK;
	if (!range_or_vma(40)) return 0;
	return err ? pick_hole_range(&O.addr, &O.len, 1) : 1;
}

/* Touchable extent of a VMA: the pages backed by the file or the shmem object. */
static u64 backed_end(const struct vma *v)
{
	u64 lim;
	if (v->kind == K_FILE) lim = (fsize[v->idx] + PMASK) & ~PMASK;
	else if (v->kind == K_SHM) lim = shm_size[v->idx];
	else return v->end;
	if (v->off >= lim) return v->start;
	u64 e = v->start + (lim - v->off);
	return e < v->end ? e : v->end;
}

static int gen_touch(int err)
{
	(void)err;
	O.op = OP_TOUCH;
	if (P->thp_pct && chance(P->thp_pct)) { /* a 2 MiB aligned block inside a VMA: THP faults */
		u64 a;
		int k = aligned_block(&a);
		if (k >= 0) {
			const struct vma *v = &S[cand[k]];
			O.addr = a + rnd(8) * PG, O.len = rpages(4);
			O.write = v->perms[1] == 'w' && (v->perms[0] != 'r' || chance(40));
			return 1;
		}
	}
	for (int t = 0; t < 16 && ncand; t++) {
		u64 k = rnd((u64)ncand);
		const struct vma *v = &S[cand[k]];
		int r = v->perms[0] == 'r', w = v->perms[1] == 'w';
		if (!r && !w) continue;
		if (v->kind != K_ANON && v->kind != K_FILE && v->kind != K_SHM) continue;
		u64 s = cs[k], e = ce[k], be = backed_end(v);
		if (be < e) e = be;
		if (e <= s) continue;
		u64 pages = (e - s) / PG;
		u64 off = chance(50) ? 0 : rnd(pages);
		u64 n = chance(30) ? pages - off : rpages(16) / PG;
		if (n > pages - off) n = pages - off;
		if (n > 256) n = 256;
		O.addr = s + off * PG, O.len = n * PG;
		O.write = w && (!r || chance(60));
		return 1;
	}
	return 0;
}

/* ---- the grows profile: VM_GROWSDOWN, the stack guard gap, MAP_STACK, MAP_HUGETLB ---- */
static u64 guard_gap;   /* stack_guard_gap in bytes */
static u64 rlimit_stack;

static int has_flag(const struct vma *v, const char *code) /* a two-letter VmFlags code */
{
	for (const char *p = v->flags; *p; p++)
		if ((p == v->flags || p[-1] == ' ') && p[0] == code[0] && p[1] == code[1] && (!p[2] || p[2] == ' '))
			return 1;
	return 0;
}
/* a + k pages for a random k in [-m, m] */
static u64 pm(u64 a, u64 m) { return a + (rnd(2 * m + 1) * PG) - m * PG; }

/* A random growsdown VMA of the trace (inside the allowed region; never [stack]): its S index. */
static int pick_gd(void)
{
	int found[256], n = 0;
	for (int k = 0; k < ncand && n < 256; k++) {
		int i = cand[k];
		if (S[i].kind == K_ANON && has_flag(&S[i], "gd") && (n == 0 || found[n - 1] != i)) found[n++] = i;
	}
	return n ? found[rnd((u64)n)] : -1;
}
/* Start of the free gap below S[i] (the end of the VMA before it). */
static u64 gap_below(int i) { return i > 0 ? S[i - 1].end : 0; }

/* Placement next to a growsdown VMA: abutting it (below or above), inside its guard gap, at the
 * gap's edge +-2 pages, or a search for about what fits below the gap; as a hint, MAP_FIXED or
 * MAP_FIXED_NOREPLACE. Without a growsdown VMA, the ordinary placement. */
static int near_gd_placement(void)
{
	int i = pick_gd();
	if (i < 0 || chance(20)) return mmap_placement();
	const struct vma *v = &S[i];
	u64 lo = gap_below(i), edge = v->start > guard_gap ? v->start - guard_gap : 0;
	u64 len = chance(75) ? rpages(16) : pick_len();
	u32 r = (u32)rnd(100);
	if (r < 30) O.addr = v->start - len;
	else if (r < 50) O.addr = v->start - rpages(guard_gap / PG - 1) - len;
	else if (r < 80) O.addr = pm(edge, 2) - len;
	else O.addr = v->end;
	O.len = len;
	r = (u32)rnd(100);
	if (r < 20) { /* a search whose length is about what fits below the guard gap */
		O.addr = 0;
		if (edge > lo + 3 * PG) O.len = pm(edge - lo, 2);
	} else if (r < 40) {
		if (chance(20)) O.addr += 1 + rnd(PG - 1); /* an unaligned hint */
	} else if (r < 75) {
		O.flags |= MAP_FIXED;
	} else {
		O.flags |= MAP_FIXED_NOREPLACE;
	}
	return 1;
}

static int gen_gd_mmap(int err)
{
	(void)err;
	O.op = OP_MMAP, O.fd = -1, O.off = 0;
	O.flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN | (chance(25) ? MAP_STACK : 0);
	O.prot = pick_prot();
	if (!near_gd_placement()) return 0;
	if (chance(8)) { /* EINVAL: only private anonymous memory grows down */
		if (chance(50)) O.flags = (O.flags & ~3ULL) | MAP_SHARED;
		else O.flags &= ~(u64)MAP_ANONYMOUS, O.fd = (int)rnd(2);
	}
	return 1;
}

static int gen_near_gd(int err)
{
	(void)err;
	O.op = OP_MMAP, O.off = 0;
	O.prot = pick_prot();
	if (chance(70)) {
		O.fd = -1, O.flags = (chance(15) ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS;
	} else {
		O.fd = (int)rnd(3);
		O.flags = chance(40) ? MAP_SHARED : MAP_PRIVATE;
		if (O.fd == 2 && O.flags == MAP_SHARED) O.prot &= ~(u64)PROT_WRITE;
	}
	return near_gd_placement();
}

/* A touch starting in the free gap below a growsdown VMA and ending at most 4 pages into it. */
static int gen_gd_touch(int err)
{
	(void)err;
	int i = pick_gd();
	if (i < 0) return 0;
	const struct vma *v = &S[i];
	u64 lo = gap_below(i), a;
	if (lo >= v->start) return 0;
	u32 r = (u32)rnd(100);
	if (r < 30) a = v->start - rpages(4);
	else if (r < 50) a = pm(lo + guard_gap, 1); /* at the guard-gap distance from the VMA below */
	else if (r < 60) a = lo;                    /* right on top of the VMA below */
	else if (r < 75) a = pm(v->end - rlimit_stack, 1); /* a grown size of rlimit_stack +-1 page */
	else a = v->start - rpages(4096);
	if (a < lo || a >= v->start) return 0;
	u64 into = rnd(5) * PG;
	if (into > v->end - v->start) into = v->end - v->start;
	O.op = OP_TOUCH, O.addr = a, O.len = v->start - a + into, O.grows = 1;
	O.write = chance(50);
	return 1;
}

/* mprotect with PROT_GROWSDOWN (inside a growsdown VMA, from the gap below it, on a VMA without
 * gd: EINVAL) or PROT_GROWSUP (EINVAL, also with PROT_GROWSDOWN). */
static int gen_grows_prot(int err)
{
	(void)err;
	O.op = OP_MPROTECT;
	O.prot = pick_prot();
	u32 r = (u32)rnd(100);
	int i = pick_gd();
	if (r < 15) {
		if (!range_or_vma(30)) return 0;
		O.prot |= PROT_GROWSUP | (chance(40) ? PROT_GROWSDOWN : 0);
		return 1;
	}
	O.prot |= PROT_GROWSDOWN;
	if (r < 35 || i < 0) return range_or_vma(30);
	const struct vma *v = &S[i];
	u64 pages = (v->end - v->start) / PG, lo = gap_below(i);
	if (r < 70 || lo >= v->start) {
		O.addr = v->start + rnd(pages) * PG;
		O.len = rpages((v->end - O.addr) / PG);
	} else {
		u64 below = (v->start - lo) / PG;
		O.addr = v->start - rpages(below < 16 ? below : 16);
		O.len = v->start - O.addr + rpages(pages);
	}
	return 1;
}

/* munmap, mremap or plain mprotect of all, the bottom, the top or the middle of a growsdown VMA,
 * sometimes with some of the gap below it. */
static int gen_gd_part(int err)
{
	(void)err;
	int i = pick_gd();
	if (i < 0) return 0;
	const struct vma *v = &S[i];
	u64 pages = (v->end - v->start) / PG, a, l;
	u32 r = (u32)rnd(100);
	if (r < 25 || pages < 3) a = v->start, l = v->end - v->start;
	else if (r < 45) a = v->start, l = rpages(pages - 1);
	else if (r < 65) l = rpages(pages - 1), a = v->end - l;
	else a = v->start + (1 + rnd(pages - 2)) * PG, l = rpages((v->end - a) / PG - 1);
	if (chance(20) && gap_below(i) + 8 * PG <= a) {
		u64 g = rpages(8);
		a -= g, l += g;
	}
	r = (u32)rnd(100);
	if (r < 35) {
		O.op = OP_MUNMAP, O.addr = a, O.len = l;
		return 1;
	}
	if (r < 60) {
		O.op = OP_MPROTECT, O.prot = pick_prot(), O.addr = a, O.len = l;
		return 1;
	}
	O.op = OP_MREMAP, O.old_addr = a, O.old_len = l, O.new_addr = 0;
	r = (u32)rnd(100);
	if (r < 20) {
		O.new_len = l > PG ? rpages(l / PG - 1) : l, O.flags = 0; /* shrink */
	} else if (r < 40) {
		O.new_len = l + rpages(8), O.flags = chance(50) ? 0 : MREMAP_MAYMOVE; /* grow in place */
	} else if (r < 60) {
		O.new_len = l, O.flags = MREMAP_MAYMOVE; /* move where the kernel puts it, or to a hole */
		if (chance(50) && pick_free(l, &O.new_addr)) O.flags |= MREMAP_FIXED;
	} else if (r < 85) { /* move next to (another) growsdown VMA */
		int j = pick_gd();
		if (j < 0) return 0;
		O.new_len = l, O.flags = MREMAP_MAYMOVE | MREMAP_FIXED;
		O.new_addr = chance(60) ? S[j].start - l : S[j].end;
	} else {
		O.new_len = l, O.flags = MREMAP_MAYMOVE | MREMAP_DONTUNMAP;
		if (chance(50) && pick_free(l, &O.new_addr)) O.flags |= MREMAP_FIXED;
	}
	return 1;
}

/* MAP_STACK on anonymous and file mappings; MAP_HUGETLB private or shared, placed by the kernel,
 * with a hint, or MAP_FIXED* at 2 MiB-aligned or unaligned addresses, with MAP_HUGE_2MB, a size
 * x86 lacks, or a file. No huge pages are reserved: every MAP_HUGETLB mmap fails. */
static int gen_stack_huge(int err)
{
	(void)err;
	O.op = OP_MMAP, O.off = 0, O.prot = pick_prot();
	if (chance(45)) {
		if (chance(65)) {
			O.fd = -1, O.flags = (chance(20) ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS | MAP_STACK;
		} else {
			O.fd = (int)rnd(3);
			O.flags = (chance(40) ? MAP_SHARED : MAP_PRIVATE) | MAP_STACK;
			if (O.fd == 2 && (O.flags & 3) == MAP_SHARED) O.prot &= ~(u64)PROT_WRITE;
		}
		return mmap_placement();
	}
	O.fd = -1;
	O.flags = (chance(30) ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS | MAP_HUGETLB;
	u32 r = (u32)rnd(100);
	if (r < 30) O.flags |= MAP_HUGE_2MB;
	else if (r < 38) O.flags |= MAP_HUGE_32MB;
	else if (r < 45) O.flags &= ~(u64)MAP_ANONYMOUS, O.fd = (int)rnd(2);
	O.len = chance(60) ? rpages(16) : (1 + rnd(2)) * 2 * MIB;
	u64 a, l;
	r = (u32)rnd(100);
	if (r < 35) {
		O.addr = 0;
	} else if (r < 55) {
		if (!pick_range(&a, &l)) return 0;
		O.addr = a;
	} else {
		if (!pick_range(&a, &l)) return 0;
		a &= ~(2 * MIB - 1);
		if (chance(30)) a += rpages(511); /* deliberately unaligned */
		O.addr = a;
		O.flags |= chance(60) ? MAP_FIXED : MAP_FIXED_NOREPLACE;
	}
	return 1;
}

typedef int (*gen_fn)(int);
static const gen_fn GEN[NG] = {gen_mmap_anon, gen_mmap_file, gen_munmap, gen_mprotect, gen_mremap,
	gen_brk, gen_madvise, gen_mlock, gen_munlock, gen_touch, gen_gd_mmap, gen_near_gd, gen_gd_touch,
	gen_grows_prot, gen_gd_part, gen_stack_huge};

/* Which generator kinds have deliberate error cases in this profile. */
static int has_errors(int g)
{
	if (g == G_BRK || g == G_TOUCH || g >= G_GD_MMAP) return 0; /* the grows kinds make their own */
	if (P->errs_all) return 1;
	if (g == G_MMAP_FILE) return seq(P->name, "file") || seq(P->name, "mremap");
	if (g == G_MREMAP) return seq(P->name, "mremap");
	return 1;
}

/* The generated op stays inside the allowed region and bounded memory? */
static int op_safe(void)
{
	const u64 cap = 64 * MIB;
	switch (O.op) {
	case OP_MMAP:
		if (O.len > 512 * MIB) return 0;
		if ((O.flags & (MAP_POPULATE | MAP_LOCKED)) && O.len > cap) return 0;
		if ((O.flags & MAP_HUGETLB) && (O.flags & (MAP_FIXED | MAP_FIXED_NOREPLACE))) /* unmaps 2 MiB units */
			return allowed(O.addr, (O.len + 2 * MIB - 1) & ~(2 * MIB - 1));
		if (O.flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) return allowed(O.addr, O.len);
		return 1;
	case OP_MPROTECT:
		if (O.prot & PROT_GROWSUP) return 1; /* EINVAL or ENOMEM, nothing changes */
		if (O.prot & PROT_GROWSDOWN) {       /* the range starts at its first VMA's start */
			for (int i = 0; i < ns; i++)
				if (S[i].end > O.addr && S[i].start < O.addr + O.len)
					return !has_flag(&S[i], "gd") || allowed(S[i].start, O.addr + O.len - S[i].start);
			return 1;
		}
		return allowed(O.addr, O.len);
	case OP_TOUCH:
		if (O.grows) { /* the gap below the VMA is free; the part inside it must be the trace's */
			int k = find_vma(O.addr + O.len - 1);
			return k >= 0 && S[k].start > O.addr && allowed(S[k].start, O.addr + O.len - S[k].start);
		}
		return allowed(O.addr, O.len);
	case OP_MREMAP:
		if (O.new_len > 256 * MIB) return 0;
		if (!allowed(O.old_addr, O.old_len)) return 0;
		return !(O.flags & MREMAP_FIXED) || allowed(O.new_addr, O.new_len);
	case OP_BRK: return O.addr == 0 || (O.addr >= initial_brk && O.addr <= initial_brk + 64 * MIB);
	case OP_MADVISE:
	case OP_MLOCK:
		if (O.len > cap) return 0;
		return allowed(O.addr, O.len);
	default: return allowed(O.addr, O.len);
	}
}

static void generate(void)
{
	int total = 0;
	for (int g = 0; g < NG; g++) total += P->w[g];
	for (int t = 0; t < 200; t++) {
		u64 x = rnd((u64)total);
		int g = 0;
		while (x >= (u64)P->w[g]) x -= (u64)P->w[g], g++;
		int err = has_errors(g) && chance(P->err_pct);
		O.op = -1, O.addr = O.len = O.prot = O.flags = O.off = O.advice = 0;
		O.old_addr = O.old_len = O.new_len = O.new_addr = 0;
		O.fd = -1, O.write = 0, O.grows = 0;
		if (GEN[g](err) && op_safe()) return;
	}
	O.op = OP_MMAP, O.addr = 0, O.len = PG, O.prot = 3, O.flags = MAP_PRIVATE | MAP_ANONYMOUS;
	O.fd = -1, O.off = 0, O.grows = 0;
}

/* ---- execution ---- */
/*
 * The first access of a grows touch may raise SIGSEGV (the VMA could not grow, or the access is
 * not allowed after it grew): mmt_access returns 1 then, because the handler moves the saved
 * instruction pointer from the faulting access to mmt_access_fault. Any other SIGSEGV aborts.
 */
int mmt_access(volatile void *p, int write);
void mmt_restorer(void);
extern char mmt_access_read[], mmt_access_write[], mmt_access_fault[];
__asm__(".text\n"
	".globl mmt_access\n.hidden mmt_access\n"
	"mmt_access:\n\txorl %eax, %eax\n\ttestl %esi, %esi\n\tjnz mmt_access_write\n"
	".globl mmt_access_read\n.hidden mmt_access_read\n"
	"mmt_access_read:\n\tmovb (%rdi), %dl\n\tret\n"
	".globl mmt_access_write\n.hidden mmt_access_write\n"
	"mmt_access_write:\n\tmovb $0x5a, (%rdi)\n\tret\n"
	".globl mmt_access_fault\n.hidden mmt_access_fault\n"
	"mmt_access_fault:\n\tmovl $1, %eax\n\tret\n"
	".globl mmt_restorer\n.hidden mmt_restorer\n"
	"mmt_restorer:\n\tmovq $15, %rax\n\tsyscall\n");

struct ksigaction {
	void (*handler)(int, void *, void *);
	unsigned long flags;
	void (*restorer)(void);
	u64 mask;
};
static void on_segv(int sig, void *info, void *uc)
{
	(void)sig, (void)info;
	u64 *rip = (u64 *)((char *)uc + 40 + 16 * 8); /* ucontext_t.uc_mcontext.gregs[REG_RIP] */
	if (*rip != (u64)mmt_access_read && *rip != (u64)mmt_access_write) die("SIGSEGV outside a grows touch", *rip);
	*rip = (u64)mmt_access_fault;
}
static void catch_segv(void)
{
	static struct ksigaction sa;
	sa.handler = on_segv, sa.flags = SA_SIGINFO | SA_RESTORER, sa.restorer = mmt_restorer, sa.mask = 0;
	if (sc6(NR_rt_sigaction, SIGSEGV, (long)&sa, 0, 8, 0, 0) < 0) die("rt_sigaction failed", 0);
}

static long do_touch(void)
{
	u64 start = O.addr;
	if (O.grows) { /* below a growsdown VMA: the first access grows it, or faults */
		if (find_vma(O.addr) >= 0 || !allowed(O.addr + O.len - PG, PG)) die("unsafe grows touch", O.addr);
		if (mmt_access((volatile void *)O.addr, O.write)) return -14; /* EFAULT */
		start += PG;
	} else {
		int k = find_vma(O.addr);
		if (k < 0 || O.addr + O.len > backed_end(&S[k]) || !allowed(O.addr, O.len)) die("unsafe touch", O.addr);
	}
	for (u64 a = start; a < O.addr + O.len; a += PG) {
		volatile unsigned char *p = (volatile unsigned char *)a;
		if (O.write) *p = 0x5a;
		else (void)*p;
	}
	return 0;
}

static long execute(void)
{
	long fd = O.fd >= 0 ? ffd[O.fd] : -1;
	switch (O.op) {
	case OP_MMAP:
		return sc6(NR_mmap, (long)O.addr, (long)O.len, (long)O.prot, (long)O.flags, fd, (long)O.off);
	case OP_MUNMAP: return sc2(NR_munmap, O.addr, O.len);
	case OP_MPROTECT: return sc3(NR_mprotect, O.addr, O.len, O.prot);
	case OP_MREMAP:
		return sc6(NR_mremap, (long)O.old_addr, (long)O.old_len, (long)O.new_len, (long)O.flags,
			   (long)O.new_addr, 0);
	case OP_BRK: return sc1(NR_brk, O.addr);
	case OP_MADVISE: return sc3(NR_madvise, O.addr, O.len, O.advice);
	case OP_MLOCK: return sc3(NR_mlock2, O.addr, O.len, O.flags);
	case OP_MUNLOCK: return sc2(NR_munlock, O.addr, O.len);
	default: return do_touch();
	}
}

/* ---- printing ---- */
struct flagname {
	const char *name;
	u64 bit;
};
/* A flag set: an optional leading name, the named bits in table order, then unknown bits as hex
 * in ascending order, one string per bit except the bits of `field` (the MAP_HUGETLB page size),
 * which make one string together. */
static void oflags_field(u64 v, const struct flagname *t, int n, u64 known, const char *lead, u64 field)
{
	oc('[');
	int first = 1;
	if (lead) ostr(lead), first = 0;
	for (int i = 0; i < n; i++)
		if (v & t[i].bit) {
			if (!first) oc(',');
			ostr(t[i].name), first = 0;
		}
	for (int b = 0; b < 64; b++) {
		u64 bit = 1ULL << b, out = bit;
		if (field & bit) {
			if (field & (bit - 1)) continue; /* printed with the field's lowest bit */
			out = v & field & ~known;
		}
		if ((v & out) && !(known & bit)) {
			if (!first) oc(',');
			ohex(v & out), first = 0;
		}
	}
	oc(']');
}
static void oflags(u64 v, const struct flagname *t, int n, u64 known, const char *lead)
{
	oflags_field(v, t, n, known, lead, 0);
}
static const struct flagname PROTN[] = {{"PROT_READ", 1}, {"PROT_WRITE", 2}, {"PROT_EXEC", 4},
	{"PROT_GROWSDOWN", PROT_GROWSDOWN}, {"PROT_GROWSUP", PROT_GROWSUP}};
static const struct flagname MAPN[] = {{"MAP_FIXED", MAP_FIXED}, {"MAP_ANONYMOUS", MAP_ANONYMOUS},
	{"MAP_GROWSDOWN", MAP_GROWSDOWN}, {"MAP_LOCKED", MAP_LOCKED}, {"MAP_NORESERVE", MAP_NORESERVE},
	{"MAP_POPULATE", MAP_POPULATE}, {"MAP_STACK", MAP_STACK}, {"MAP_HUGETLB", MAP_HUGETLB},
	{"MAP_SYNC", MAP_SYNC}, {"MAP_FIXED_NOREPLACE", MAP_FIXED_NOREPLACE}};
#define NMAPN ((int)(sizeof MAPN / sizeof MAPN[0]))
static const struct flagname MREMAPN[] = {{"MREMAP_MAYMOVE", 1}, {"MREMAP_FIXED", 2}, {"MREMAP_DONTUNMAP", 4}};
static const struct flagname MLOCKN[] = {{"MLOCK_ONFAULT", 1}};

static void oprot(u64 p) { oflags(p, PROTN, 5, 7 | PROT_GROWSDOWN | PROT_GROWSUP, 0); }
static void omapflags(u64 f)
{
	static const char *TYPE[] = {0, "MAP_SHARED", "MAP_PRIVATE", "MAP_SHARED_VALIDATE"};
	u64 known = 3;
	for (int i = 0; i < NMAPN; i++) known |= MAPN[i].bit;
	oflags_field(f & ~3ULL, MAPN, NMAPN, known, TYPE[f & 3], MAP_HUGE_FIELD);
}

static const char *errname(long e)
{
	static char b[24];
	switch (e) {
	case 1: return "EPERM";
	case 9: return "EBADF";
	case 11: return "EAGAIN";
	case 12: return "ENOMEM";
	case 13: return "EACCES";
	case 14: return "EFAULT";
	case 16: return "EBUSY";
	case 17: return "EEXIST";
	case 22: return "EINVAL";
	case 75: return "EOVERFLOW";
	case 95: return "EOPNOTSUPP";
	}
	b[0] = 'E';
	utoa((u64)e, b + 1, 10);
	return b;
}

static void ovmas(int layout)
{
	oc('[');
	for (int i = 0; i < ns; i++) {
		const struct vma *v = &S[i];
		if (i) oc(',');
		oc('{');
		okey("start"), ohex(v->start);
		okey("end"), ohex(v->end);
		okey("perms"), ostr(v->perms);
		okey("offset"), ohex(v->off);
		okey("name"), ostr(v->name);
		okey("vmflags"), ostr(v->flags);
		if (layout) okey("has_anon_pages"), os(v->anon_kb ? "true" : "false");
		oc('}');
	}
	oc(']');
}

static void oargs(void)
{
	oc('{');
	switch (O.op) {
	case OP_MMAP:
		okey("addr"), ohex(O.addr);
		okey("len"), ohex(O.len);
		okey("prot"), oprot(O.prot);
		okey("flags"), omapflags(O.flags);
		okey("fd");
		if (O.fd >= 0) ostr(FID[O.fd]);
		else os("null");
		okey("offset"), ohex(O.off);
		break;
	case OP_MPROTECT:
		okey("addr"), ohex(O.addr);
		okey("len"), ohex(O.len);
		okey("prot"), oprot(O.prot);
		break;
	case OP_MREMAP:
		okey("old_addr"), ohex(O.old_addr);
		okey("old_len"), ohex(O.old_len);
		okey("new_len"), ohex(O.new_len);
		okey("flags"), oflags(O.flags, MREMAPN, 3, 7, 0);
		okey("new_addr"), ohex(O.new_addr);
		break;
	case OP_BRK: okey("addr"), ohex(O.addr); break;
	case OP_MADVISE:
		okey("addr"), ohex(O.addr);
		okey("len"), ohex(O.len);
		okey("advice");
		{
			int found = 0;
			for (int i = 0; i < 16; i++)
				if (MADVV[i] == O.advice) ostr(MADV[i]), found = 1;
			if (!found) ohex(O.advice);
		}
		break;
	case OP_MLOCK:
		okey("addr"), ohex(O.addr);
		okey("len"), ohex(O.len);
		okey("flags"), oflags(O.flags, MLOCKN, 1, 1, 0);
		break;
	case OP_TOUCH:
		okey("addr"), ohex(O.addr);
		okey("len"), ohex(O.len);
		okey("write"), os(O.write ? "true" : "false");
		break;
	default: /* munmap, munlock */
		okey("addr"), ohex(O.addr);
		okey("len"), ohex(O.len);
	}
	oc('}');
}

/* ---- script mode: `mmtrace script 0 FILE DIR` runs the ops listed in FILE ----
 *
 *   mmap ADDR LEN PROT FLAGS FD OFF     (FD: -1, 0, 1 or 2 for f0..f2)
 *   munmap ADDR LEN        mprotect ADDR LEN PROT       brk ADDR
 *   mremap OLD OLDLEN NEWLEN FLAGS NEW                  madvise ADDR LEN ADVICE
 *   mlock ADDR LEN FLAGS   munlock ADDR LEN             touch ADDR LEN WRITE(0/1)
 *
 * Numbers are decimal or 0x-hex, `E-0x...` is arena.end minus a value; `#` starts a comment.
 * The same safety checks apply as for generated ops (the recorder aborts on an unsafe line). */
static char SCRIPT[1 << 20];
static const char *script_pos;
static int script_mode;

static const char *skip_blank(const char *p)
{
	for (;;) {
		while (*p == ' ' || *p == '\t') p++;
		if (*p != '#') return p;
		while (*p && *p != '\n') p++;
	}
}
static const char *script_num(const char *p, u64 *v)
{
	p = skip_blank(p);
	int neg = 0, from_end = 0;
	if (p[0] == 'E' && p[1] == '-') from_end = 1, p += 2;
	if (*p == '-') neg = 1, p++;
	if (p[0] == '0' && p[1] == 'x') p = parse_hex(p + 2, v);
	else if (*p >= '0' && *p <= '9') p = parse_dec(p, v);
	else die("script: number expected", (u64)(p - SCRIPT));
	if (neg) *v = (u64)-(i64)*v;
	if (from_end) *v = arena_end - *v;
	return p;
}
static int script_lines(void)
{
	int n = 0;
	for (const char *p = SCRIPT; *p;) {
		p = skip_blank(p);
		if (*p && *p != '\n') n++;
		while (*p && *p != '\n') p++;
		if (*p) p++;
	}
	return n;
}
static void script_next(void)
{
	const char *p = script_pos;
	for (;;) {
		p = skip_blank(p);
		if (*p != '\n') break;
		p++;
	}
	char word[16];
	int n = 0;
	while (*p >= 'a' && *p <= 'z' && n < 15) word[n++] = *p++;
	word[n] = 0;
	O.op = -1, O.addr = O.len = O.prot = O.flags = O.off = O.advice = 0;
	O.old_addr = O.old_len = O.new_len = O.new_addr = 0;
	O.fd = -1, O.write = 0, O.grows = 0;
	u64 fd, w;
	for (int k = 0; k < 9; k++)
		if (seq(word, OPNAME[k])) O.op = k;
	switch (O.op) {
	case OP_MMAP:
		p = script_num(p, &O.addr), p = script_num(p, &O.len), p = script_num(p, &O.prot);
		p = script_num(p, &O.flags), p = script_num(p, &fd), p = script_num(p, &O.off);
		O.fd = (int)(i64)fd;
		if (O.fd < -1 || O.fd > 2) die("script: fd must be -1, 0, 1 or 2", fd);
		break;
	case OP_MPROTECT: p = script_num(p, &O.addr), p = script_num(p, &O.len), p = script_num(p, &O.prot); break;
	case OP_MREMAP:
		p = script_num(p, &O.old_addr), p = script_num(p, &O.old_len), p = script_num(p, &O.new_len);
		p = script_num(p, &O.flags), p = script_num(p, &O.new_addr);
		break;
	case OP_BRK: p = script_num(p, &O.addr); break;
	case OP_MADVISE: p = script_num(p, &O.addr), p = script_num(p, &O.len), p = script_num(p, &O.advice); break;
	case OP_MLOCK: p = script_num(p, &O.addr), p = script_num(p, &O.len), p = script_num(p, &O.flags); break;
	case OP_TOUCH:
		p = script_num(p, &O.addr), p = script_num(p, &O.len), p = script_num(p, &w);
		O.write = w != 0;
		if ((O.addr | O.len) & PMASK) die("script: touch needs page-aligned addr and len", O.addr);
		O.grows = find_vma(O.addr) < 0; /* starts below a growsdown VMA (op_safe checks) */
		break;
	case OP_MUNMAP:
	case OP_MUNLOCK: p = script_num(p, &O.addr), p = script_num(p, &O.len); break;
	default: die("script: unknown op", (u64)(p - SCRIPT));
	}
	p = skip_blank(p);
	if (*p && *p != '\n') die("script: trailing text", (u64)(p - SCRIPT));
	if (*p) p++;
	script_pos = p;
	if (!op_safe()) die("script: op outside the arena and returned ranges (or too large)", O.addr | O.old_addr);
}

/* ---- start-up ---- */
static u64 parse_u64(const char *s)
{
	u64 v;
	parse_dec(s, &v);
	return v;
}
static void bracket_word(const char *path, char *out, size_t cap)
{
	static char b[4096];
	read_path(path, b, sizeof b);
	const char *p = b;
	while (*p && *p != '[') p++;
	if (!*p) die("no [word] in sysfs file", 0);
	p++;
	size_t i = 0;
	while (p[i] && p[i] != ']' && i + 1 < cap) out[i] = p[i], i++;
	out[i] = 0;
}

static void make_path(char *out, const char *dir, const char *name)
{
	out[0] = 0;
	scat(out, dir, 4096);
	scat(out, "/", 4096);
	scat(out, name, 4096);
}

static char FILEBUF[1 << 16];

static void create_files(const char *dir, u64 seed)
{
	u64 x = seed ^ 0x5eedf11e5ULL;
	u64 r0 = splitmix(&x), r1 = splitmix(&x), r2 = splitmix(&x);
	fsize[0] = (14 + r0 % 5) * PG;                      /* 0xe000 .. 0x12000 */
	fsize[1] = 0x100000 + (r1 % 4) * PG + 1 + (r1 >> 8) % 0xfff; /* ~1 MiB, unaligned end */
	fsize[2] = (2 + r2 % 2) * PG;                        /* 0x2000 or 0x3000 */
	for (size_t i = 0; i < sizeof FILEBUF; i++) FILEBUF[i] = (char)('a' + i % 26);
	for (int i = 0; i < 3; i++) {
		char path[4096];
		make_path(path, dir, FID[i]);
		long fd = sc3(NR_open, path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0) die("cannot create test file", (u64)-fd);
		for (u64 done = 0; done < fsize[i];) {
			u64 n = fsize[i] - done < sizeof FILEBUF ? fsize[i] - done : sizeof FILEBUF;
			long w = sc3(NR_write, fd, FILEBUF, n);
			if (w <= 0) die("cannot write test file", (u64)-w);
			done += (u64)w;
		}
		if (i == 2) {
			sc1(NR_close, fd);
			fd = sc3(NR_open, path, O_RDONLY | O_CLOEXEC, 0);
			if (fd < 0) die("cannot reopen f2", (u64)-fd);
		}
		ffd[i] = (int)fd;
		struct kstat st;
		if (sc2(NR_fstat, fd, &st) < 0) die("fstat failed", (u64)i);
		fino[i] = st.ino;
		dev_split(st.dev, &fmajor[i], &fminor[i]);
		long sfs[16];
		if (sc2(NR_fstatfs, fd, sfs) < 0) die("fstatfs failed", (u64)i);
		u64 magic = (u64)sfs[0] & 0xffffffffULL;
		scopy(ffsname[i], magic == 0xef53 ? "ext4" : magic == 0x01021994 ? "tmpfs" : magic == 0x58465342 ? "xfs"
			  : magic == 0x9123683e ? "btrfs" : "unknown", sizeof ffsname[i]);
	}
}

static int profile_index(const char *name)
{
	for (size_t i = 0; i < sizeof PROFILES / sizeof PROFILES[0]; i++)
		if (seq(PROFILES[i].name, name)) return (int)i;
	return -1;
}

int main(int argc, char **argv, char **envp)
{
	if (argc != 5) die("usage: mmtrace PROFILE SEED NOPS DIR | mmtrace script 0 FILE DIR", (u64)argc);
	int pi = profile_index(argv[1]);
	if (pi < 0) die("unknown profile", 0);
	P = &PROFILES[pi];
	u64 seed = parse_u64(argv[2]), nops = 0;
	script_mode = seq(P->name, "script");
	if (script_mode) {
		if (read_path(argv[3], SCRIPT, sizeof SCRIPT) == 0) die("cannot read the script", 0);
		script_pos = SCRIPT;
		nops = (u64)script_lines();
	} else nops = parse_u64(argv[3]);
	if (envp[0]) die("run with an empty environment (env -i)", 0);
	long pers = sc1(NR_personality, 0xffffffffL);
	if (!(pers & ADDR_NO_RANDOMIZE)) die("run under setarch -R (ASLR off)", (u64)pers);
	u64 rl[2];
	if (sc2(NR_getrlimit, RLIMIT_STACK, rl) < 0) die("getrlimit failed", 0);
	if (rl[0] != 8 * MIB) die("stack limit must be 8 MiB", rl[0]);

	u64 x = seed * 0x100000001b3ULL ^ (u64)(pi + 1) * 0x9e3779b97f4a7c15ULL;
	for (int i = 0; i < 4; i++) rs[i] = splitmix(&x);

	create_files(argv[4], seed);
	struct kstat st;
	if (sc2(NR_stat, "/proc/self/exe", &st) < 0) die("stat /proc/self/exe failed", 0);
	exe_ino = st.ino;
	dev_split(st.dev, &exe_maj, &exe_min);

	static char uts[6 * 65];
	sc1(NR_uname, uts);
	char thp[32], thp_shmem[32];
	bracket_word("/sys/kernel/mm/transparent_hugepage/enabled", thp, sizeof thp);
	bracket_word("/sys/kernel/mm/transparent_hugepage/shmem_enabled", thp_shmem, sizeof thp_shmem);
	static char tmp[4096];
	read_path("/proc/sys/vm/mmap_min_addr", tmp, sizeof tmp);
	u64 mmap_min_addr = parse_u64(tmp);
	read_path("/proc/sys/vm/overcommit_memory", tmp, sizeof tmp);
	u64 overcommit = parse_u64(tmp);
	u64 guard_pages = 256;
	{
		static char cmdline[8192];
		read_path("/proc/cmdline", cmdline, sizeof cmdline);
		for (const char *p = cmdline; *p; p++)
			if (starts(p, "stack_guard_gap=")) guard_pages = parse_u64(p + 16);
	}
	u64 euid = (u64)sc1(NR_geteuid, 0);
	guard_gap = guard_pages * PG, rlimit_stack = rl[0];
	catch_segv();
	if (seq(P->name, "grows")) { /* every MAP_HUGETLB mmap must fail: no huge pages to be had */
		read_path("/proc/sys/vm/nr_hugepages", tmp, sizeof tmp);
		if (parse_u64(tmp)) die("grows needs nr_hugepages = 0", parse_u64(tmp));
		read_path("/proc/sys/vm/nr_overcommit_hugepages", tmp, sizeof tmp);
		if (parse_u64(tmp)) die("grows needs nr_overcommit_hugepages = 0", parse_u64(tmp));
	}

	long sfd = sc3(NR_open, "/proc/self/smaps", O_RDONLY | O_CLOEXEC, 0);
	if (sfd < 0) die("cannot open /proc/self/smaps", (u64)-sfd);
	smaps_fd = (int)sfd;

	initial_brk = cur_brk = (u64)sc1(NR_brk, 0);
	u64 gap = rl[0] + guard_pages * PG;
	if (gap < 128 * MIB) gap = 128 * MIB;
	if (gap > TASK_SIZE / 6 * 5) gap = TASK_SIZE / 6 * 5;
	u64 mmap_base = (TASK_SIZE - gap + PMASK) & ~PMASK;

	snapshot();
	u64 low = 0, high = 0;
	int have_stack = 0;
	for (int i = 0; i < ns; i++) {
		const struct vma *v = &S[i];
		if (seq(v->name, "[stack]")) {
			if (v->end != TASK_SIZE) die("[stack] does not end at TASK_SIZE", v->end);
			have_stack = 1;
			continue;
		}
		if (v->start <= initial_brk || v->start >= TASK_SIZE) continue;
		if (!low || v->start < low) low = v->start;
		if (v->end > high) high = v->end;
	}
	if (!have_stack) die("no [stack]", 0);
	if (high != mmap_base) die("highest mmap-area VMA does not end at mmap_base", high);
	arena_start = low - ARENA_SIZE, arena_end = low;
	for (int i = 0; i < ns; i++)
		if (S[i].start < arena_end && S[i].end > arena_start) die("arena is not free", S[i].start);
	int nbefore = ns;
	for (int i = 0; i < ns; i++) INIT[i] = S[i];
	int zero_page = probe_zero_page(arena_start + ARENA_SIZE / 2);
	snapshot();
	if (ns != nbefore) die("the zero-page probe changed the VMA count", (u64)ns);
	for (int i = 0; i < ns; i++)
		if (S[i].start != INIT[i].start || S[i].end != INIT[i].end) die("the zero-page probe changed a VMA", S[i].start);
	for (int i = 0; i < ns; i++)
		if (S[i].start < arena_end && S[i].end > arena_start) die("arena is not free", S[i].start);
	for (int i = 0; i < ns; i++) INIT[i] = S[i];
	ninit = ns;
	u_add(arena_start, arena_end);

	/* header */
	oc('{');
	okey("type"), ostr("header");
	okey("format"), ostr("linux-mm-trace");
	okey("version"), odec(1);
	okey("kernel"), ostr(uts + 2 * 65);
	okey("arch"), ostr("x86_64");
	okey("page_size"), odec(4096);
	okey("task_size"), ohex(TASK_SIZE);
	okey("mmap_base"), ohex(mmap_base);
	okey("mmap_min_addr"), ohex(mmap_min_addr);
	okey("thp_enabled"), ostr(thp);
	okey("thp_shmem_enabled"), ostr(thp_shmem);
	okey("stack_guard_gap_pages"), odec((i64)guard_pages);
	okey("rlimit_stack"), ohex(rl[0]);
	okey("overcommit_memory"), odec((i64)overcommit);
	okey("zero_page"), os(zero_page ? "true" : "false");
	okey("euid"), odec((i64)euid);
	okey("initial_brk"), ohex(initial_brk);
	okey("arena"), oc('{'), okey("start"), ohex(arena_start), okey("end"), ohex(arena_end), oc('}');
	okey("files"), oc('[');
	for (int i = 0; i < 3; i++) {
		if (i) oc(',');
		oc('{');
		okey("id"), ostr(FID[i]);
		okey("size"), ohex(fsize[i]);
		okey("writable"), os(i < 2 ? "true" : "false");
		okey("fs"), ostr(ffsname[i]);
		oc('}');
	}
	oc(']');
	okey("seed"), odec((i64)seed);
	okey("profile"), ostr(P->name);
	okey("nops"), odec((i64)nops);
	okey("generator"), ostr(GENERATOR);
	os("}\n");
	ob_flush();

	oc('{');
	okey("type"), ostr("layout");
	okey("vmas"), ovmas(1);
	os("}\n");
	ob_flush();

	for (u64 i = 0; i < nops; i++) {
		derive();
		if (script_mode) script_next();
		else generate();
		long ret = execute();
		int failed = O.op != OP_BRK && is_err(ret); /* a touch fails only with EFAULT (grows) */
		if (!failed && O.op == OP_MMAP && (O.flags & 3) && (O.flags & 3) != MAP_PRIVATE && (O.flags & MAP_ANONYMOUS)) {
			pending_shm_addr = (u64)ret;
			pending_shm_size = (O.len + PMASK) & ~PMASK;
		}
		snapshot();
		verify_initial();
		if (!failed && O.op == OP_MMAP) u_add((u64)ret, (u64)ret + O.len);
		if (O.op == OP_TOUCH && O.grows && find_vma(O.addr) >= 0) /* what the VMA grew into */
			u_add(O.addr, O.addr + O.len);
		if (!failed && O.op == OP_MREMAP) {
			u_add((u64)ret, (u64)ret + O.new_len);
			if ((u64)ret != O.old_addr && O.old_len == O.new_len && O.old_len)
				moved_from = O.old_addr, moved_to = (u64)ret, moved_len = O.old_len;
		}
		if (O.op == OP_BRK) cur_brk = (u64)ret;

		oc('{');
		okey("type"), ostr("op");
		okey("i"), odec((i64)i);
		okey("op"), ostr(OPNAME[O.op]);
		okey("args"), oargs();
		if (failed) okey("errno"), ostr(errname(-ret));
		else if (O.op == OP_MMAP || O.op == OP_MREMAP || O.op == OP_BRK) okey("ret"), ohex((u64)ret);
		else okey("ret"), odec(0);
		okey("vmas"), ovmas(0);
		os("}\n");
		ob_flush();
	}
	oc('{');
	okey("type"), ostr("end");
	okey("ops"), odec((i64)nops);
	os("}\n");
	ob_flush();
	sc1(NR_exit_group, 0);
	return 0;
}
