/*
 * mmtrace-lite: records what the running Linux kernel does to this process's address space under
 * a seeded random sequence of mmap/munmap/mprotect/mremap/brk/madvise/mlock/munlock/touch calls,
 * in the linux-mm-trace v1 format (shared/linux-traces/FORMAT.md), so vmspace's replayer can be
 * checked against the real kernel on sequences beyond the shipped samples. A development tool:
 * `gcc -O2 -o /tmp/mmtrace recorder.c && /tmp/mmtrace SEED NOPS DIR > trace.jsonl` (DIR holds
 * the three test files it creates). It re-executes itself without ASLR, allocates nothing after
 * start-up and writes with write(2).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#define PAGE 4096UL
#define MIB (1024UL * 1024UL)
#define MAXV 4096

struct vma {
	uint64_t start, end, offset;
	char perms[5];
	char name[64];
	char flags[160];
	int anon_pages;
	uint64_t inode;
};

static struct vma vmas[MAXV];
static int nvmas;
static char smaps[1 << 22];
static char out[1 << 20];
static size_t outn;
static int smaps_fd;
static char exe_path[512];
static char file_path[3][512];
static uint64_t file_size[3] = { 0x10000, 0x10007b, 0x2000 };
static int file_fd[3];
static uint64_t shm_inode[512], shm_size[512];
static int nshm;
static uint64_t owned_s[1024], owned_e[1024];
static int nowned;
static uint64_t arena_s, arena_e, initial_brk;
static uint64_t rng_state;
static int thp_bias;

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}
static uint64_t below(uint64_t n) { return n ? rnd() % n : 0; }

static void flush(void) { size_t o = 0; while (o < outn) { ssize_t w = write(1, out + o, outn - o); if (w <= 0) _exit(3); o += w; } outn = 0; }
static void put(const char *s) { size_t l = strlen(s); if (outn + l >= sizeof(out)) flush(); memcpy(out + outn, s, l); outn += l; }
static void puthex(uint64_t v) { char b[24]; int i = 23; b[i] = 0; do { b[--i] = "0123456789abcdef"[v & 15]; v >>= 4; } while (v); b[--i] = 'x'; b[--i] = '0'; put("\""); put(b + i); put("\""); }
static void putdec(int64_t v) { char b[24]; int i = 23; int neg = v < 0; uint64_t u = neg ? -v : v; b[i] = 0; do { b[--i] = '0' + u % 10; u /= 10; } while (u); if (neg) b[--i] = '-'; put(b + i); }

static uint64_t parsehex(const char **p) { uint64_t v = 0; while (1) { char c = **p; if (c >= '0' && c <= '9') v = v * 16 + c - '0'; else if (c >= 'a' && c <= 'f') v = v * 16 + c - 'a' + 10; else break; (*p)++; } return v; }
static uint64_t parsedec(const char **p) { uint64_t v = 0; while (**p >= '0' && **p <= '9') v = v * 10 + *(*p)++ - '0'; return v; }

static void name_of(struct vma *v, const char *path)
{
	if (!*path) { v->name[0] = 0; return; }
	if (!strcmp(path, exe_path)) { strcpy(v->name, "exe"); return; }
	for (int i = 0; i < 3; i++) if (!strcmp(path, file_path[i])) { strcpy(v->name, "file:f0"); v->name[6] = '0' + i; return; }
	if (!strncmp(path, "/dev/zero", 9)) {
		int n = -1;
		for (int i = 0; i < nshm; i++) if (shm_inode[i] == v->inode) n = i;
		if (n < 0) { n = nshm++; shm_inode[n] = v->inode; shm_size[n] = 0; }
		strcpy(v->name, "anon_shared:"); char b[16]; int i = 15; b[i] = 0; int m = n; do { b[--i] = '0' + m % 10; m /= 10; } while (m); strcat(v->name, b + i);
		return;
	}
	if (path[0] == '[') { strncpy(v->name, path, 63); return; }
	const char *base = strrchr(path, '/');
	strcpy(v->name, "lib:"); strncat(v->name, base ? base + 1 : path, 50);
}

static void snapshot(void)
{
	ssize_t n = 0, r;
	lseek(smaps_fd, 0, SEEK_SET);
	while ((r = read(smaps_fd, smaps + n, sizeof(smaps) - 1 - n)) > 0) n += r;
	smaps[n] = 0;
	nvmas = 0;
	const char *p = smaps;
	struct vma *v = 0;
	while (*p) {
		const char *line = p;
		const char *eol = strchr(p, '\n');
		if (!eol) break;
		if ((line[0] >= '0' && line[0] <= '9') || (line[0] >= 'a' && line[0] <= 'f')) {
			const char *q = line;
			uint64_t s = parsehex(&q);
			if (*q == '-') {
				v = &vmas[nvmas++];
				memset(v, 0, sizeof(*v));
				q++; v->start = s; v->end = parsehex(&q); q++;
				memcpy(v->perms, q, 4); q += 5;
				v->offset = parsehex(&q); q++;
				while (*q != 0x20) q++;
				q++;
				v->inode = parsedec(&q);
				while (*q == ' ') q++;
				char path[512]; size_t l = eol - q; if (l > 511) l = 511; memcpy(path, q, l); path[l] = 0;
				name_of(v, path);
			}
		} else if (v && !strncmp(line, "VmFlags: ", 9)) {
			size_t l = eol - line - 9; if (l > 159) l = 159; memcpy(v->flags, line + 9, l); v->flags[l] = 0;
			while (l && v->flags[l - 1] == ' ') v->flags[--l] = 0;
		} else if (v && !strncmp(line, "Anonymous:", 10)) {
			const char *q = line + 10; while (*q == ' ') q++; v->anon_pages = parsedec(&q) > 0;
		}
		p = eol + 1;
	}
}

static void put_vmas(int layout)
{
	put("[");
	for (int i = 0; i < nvmas; i++) {
		struct vma *v = &vmas[i];
		if (i) put(",");
		put("{\"start\":"); puthex(v->start); put(",\"end\":"); puthex(v->end);
		put(",\"perms\":\""); put(v->perms); put("\",\"offset\":");
		int show = v->name[0] && v->name[0] != '[' ;
		puthex(show ? v->offset : 0);
		put(",\"name\":\""); put(v->name); put("\",\"vmflags\":\""); put(v->flags); put("\"");
		if (layout) put(v->anon_pages ? ",\"has_anon_pages\":true" : ",\"has_anon_pages\":false");
		put("}");
	}
	put("]");
}

static int owned(uint64_t a, uint64_t e)
{
	/* every page of [a, e) lies in the arena or a range the trace got back */
	for (uint64_t p = a & ~(PAGE - 1); p < e; p += PAGE) {
		int ok = p >= arena_s && p < arena_e;
		for (int i = 0; !ok && i < nowned; i++) ok = p >= owned_s[i] && p < owned_e[i];
		if (!ok) return 0;
	}
	return 1;
}
static void own(uint64_t a, uint64_t len) { if (nowned < 1024) { owned_s[nowned] = a; owned_e[nowned++] = a + ((len + PAGE - 1) & ~(PAGE - 1)); } }

/* keeps [*a, *a + len) inside the target ranges, moving it into the arena if needed */
static void fit(uint64_t *a, uint64_t len)
{
	if (owned(*a, *a + len)) return;
	uint64_t room = (arena_e - arena_s) / PAGE;
	uint64_t pages = (len + PAGE - 1) / PAGE + 1;
	*a = arena_s + below(room > pages ? room - pages : 1) * PAGE + (*a & (PAGE - 1));
}

static uint64_t anchor(void)
{
	/* a VMA boundary inside the target ranges, or an arena edge, a few pages off */
	uint64_t a;
	int k = below(nvmas + 2);
	if (k >= nvmas) a = k == nvmas ? arena_s : arena_e - 64 * PAGE;
	else a = below(2) ? vmas[k].start : vmas[k].end;
	a += (below(7) - 3) * PAGE;
	return a;
}
static uint64_t length(void)
{
	uint64_t r = below(100);
	if (thp_bias && r < 40) return (2 + 2 * below(4)) * MIB;
	if (r < 70) return (1 + below(64)) * PAGE;
	if (r < 80) return (2 + 2 * below(4)) * MIB;
	if (r < 90) return (1 + below(3000)) * PAGE;
	return (1 + below(64)) * PAGE + below(PAGE);
}

static const char *prot_names[] = { "PROT_READ", "PROT_WRITE", "PROT_EXEC" };
static void put_prot(uint64_t prot)
{
	put("["); int first = 1;
	for (int i = 0; i < 3; i++) if (prot & (1 << i)) { if (!first) put(","); put("\""); put(prot_names[i]); put("\""); first = 0; }
	uint64_t rest = prot & ~7UL; if (rest) { if (!first) put(","); puthex(rest); }
	put("]");
}
static void put_mapflags(uint64_t f)
{
	static const struct { const char *n; uint64_t v; } names[] = {
		{ "MAP_FIXED", 0x10 }, { "MAP_ANONYMOUS", 0x20 }, { "MAP_LOCKED", 0x2000 }, { "MAP_NORESERVE", 0x4000 },
		{ "MAP_POPULATE", 0x8000 }, { "MAP_SYNC", 0x80000 }, { "MAP_FIXED_NOREPLACE", 0x100000 } };
	put("["); int first = 1;
	uint64_t t = f & 3;
	if (t) { put(t == 1 ? "\"MAP_SHARED\"" : t == 2 ? "\"MAP_PRIVATE\"" : "\"MAP_SHARED_VALIDATE\""); first = 0; }
	uint64_t rest = f & ~3UL;
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) if (rest & names[i].v) { if (!first) put(","); put("\""); put(names[i].n); put("\""); first = 0; rest &= ~names[i].v; }
	if (rest) { if (!first) put(","); puthex(rest); }
	put("]");
}
static void put_bits(uint64_t f, const char **n, int count)
{
	put("["); int first = 1;
	for (int i = 0; i < count; i++) if (f & (1UL << i)) { if (!first) put(","); put("\""); put(n[i]); put("\""); first = 0; f &= ~(1UL << i); }
	if (f) { if (!first) put(","); puthex(f); }
	put("]");
}

static const struct { const char *n; int v; } advices[] = {
	{ "MADV_NORMAL", 0 }, { "MADV_RANDOM", 1 }, { "MADV_SEQUENTIAL", 2 }, { "MADV_WILLNEED", 3 }, { "MADV_DONTNEED", 4 },
	{ "MADV_FREE", 8 }, { "MADV_DONTFORK", 10 }, { "MADV_DOFORK", 11 }, { "MADV_HUGEPAGE", 14 }, { "MADV_NOHUGEPAGE", 15 },
	{ "MADV_DONTDUMP", 16 }, { "MADV_DODUMP", 17 }, { "MADV_WIPEONFORK", 18 }, { "MADV_KEEPONFORK", 19 },
	{ "MADV_POPULATE_READ", 22 }, { "MADV_POPULATE_WRITE", 23 } };

static void touch(uint64_t a, uint64_t len, int write)
{
	for (uint64_t p = a; p < a + len; p += PAGE) {
		struct vma *v = 0;
		for (int i = 0; i < nvmas; i++) if (vmas[i].start <= p && p < vmas[i].end) v = &vmas[i];
		if (!v || v->perms[write ? 1 : 0] == '-') continue;
		uint64_t off = v->offset + (p - v->start);
		if (!strncmp(v->name, "file:f", 6) && off >= ((file_size[v->name[6] - '0'] + PAGE - 1) & ~(PAGE - 1))) continue;
		if (!strncmp(v->name, "anon_shared:", 12)) {
			int n = 0; const char *q = v->name + 12; n = parsedec(&q);
			if (off >= shm_size[n]) continue;
		}
		volatile char *c = (volatile char *)p;
		if (write) *c = *c + 1; else (void)*c;
	}
}

int main(int argc, char **argv)
{
	if (argc < 4) return 2;
	if (!(personality(0xffffffff) & ADDR_NO_RANDOMIZE)) {
		struct rlimit rl = { 8 * MIB, 8 * MIB };
		setrlimit(RLIMIT_STACK, &rl);
		personality(ADDR_NO_RANDOMIZE);
		execv("/proc/self/exe", argv);
		return 4;
	}
	thp_bias = argc > 4;
	const char *sp = argv[1]; uint64_t seed = parsedec(&sp); sp = argv[2]; uint64_t nops = parsedec(&sp);
	rng_state = seed * 0x9e3779b97f4a7c15ULL + 1;
	ssize_t l = readlink("/proc/self/exe", exe_path, sizeof(exe_path) - 1); exe_path[l < 0 ? 0 : l] = 0;
	for (int i = 0; i < 3; i++) {
		strcpy(file_path[i], argv[3]); strcat(file_path[i], "/mmtrace-f0"); file_path[i][strlen(file_path[i]) - 1] = '0' + i;
		int fd = open(file_path[i], O_RDWR | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || ftruncate(fd, file_size[i])) return 5;
		if (i == 2) { close(fd); fd = open(file_path[i], O_RDONLY); }
		file_fd[i] = fd;
	}
	smaps_fd = open("/proc/self/smaps", O_RDONLY);
	initial_brk = syscall(SYS_brk, 0);
	snapshot();
	uint64_t lowest = ~0UL;
	for (int i = 0; i < nvmas; i++) if (vmas[i].start > initial_brk && strcmp(vmas[i].name, "[stack]") && vmas[i].start < lowest) lowest = vmas[i].start;
	arena_e = lowest; arena_s = lowest - 256 * MIB;
	static struct utsname uts;
	uname(&uts);
	put("{\"type\":\"header\",\"format\":\"linux-mm-trace\",\"version\":1,\"kernel\":\""); put(uts.release);
	put("\",\"arch\":\"x86_64\",\"page_size\":4096,");
	put("\"task_size\":\"0x7ffffffff000\",\"mmap_base\":\"0x7ffff7fff000\",\"mmap_min_addr\":\"0x1000\",\"thp_enabled\":\"madvise\",\"thp_shmem_enabled\":\"never\",");
	put("\"stack_guard_gap_pages\":256,\"rlimit_stack\":\"0x800000\",\"overcommit_memory\":0,\"euid\":0,\"initial_brk\":"); puthex(initial_brk);
	put(",\"arena\":{\"start\":"); puthex(arena_s); put(",\"end\":"); puthex(arena_e); put("},\"files\":[");
	for (int i = 0; i < 3; i++) { if (i) put(","); put("{\"id\":\"f"); char d[2] = { (char)('0' + i), 0 }; put(d); put("\",\"size\":"); puthex(file_size[i]); put(i == 2 ? ",\"writable\":false" : ",\"writable\":true"); put(",\"fs\":\"ext4\"}"); }
	put("],\"seed\":"); putdec(seed); put(",\"profile\":\"lite\",\"nops\":"); putdec(nops); put(",\"generator\":\"mmtrace-lite\"}\n{\"type\":\"layout\",\"vmas\":");
	put_vmas(1); put("}\n"); flush();
	uint64_t cur_brk = initial_brk;
	static const char *mremap_names[] = { "MREMAP_MAYMOVE", "MREMAP_FIXED", "MREMAP_DONTUNMAP" };
	static const char *mlock_names[] = { "MLOCK_ONFAULT" };
	for (uint64_t i = 0; i < nops; i++) {
		int64_t ret = 0; int is_addr = 0;
		uint64_t op = below(100);
		if (thp_bias && op >= 74 && op < 84 && below(2)) op = 95;
		put("{\"type\":\"op\",\"i\":"); putdec(i); put(",\"op\":");
		if (op < 30) {
			uint64_t fixed = below(3), anon = below(3) != 0, len = below(20) ? length() : below(2) * 5;
			uint64_t prot = below(8); if (!below(30)) prot |= 0x10;
			uint64_t type = below(10) < 6 ? 2 : below(10) < 9 ? 1 : 3; if (!below(40)) type = 0;
			uint64_t flags = type | (anon ? 0x20 : 0) | (fixed == 1 ? 0x10 : fixed == 2 && below(2) ? 0x100000 : 0);
			if (!below(8)) flags |= 0x4000; if (!below(8)) flags |= 0x8000; if (!below(12)) flags |= 0x2000;
			if (!below(40)) flags |= 0x200000;
			if (!below(30)) flags |= 0x80000;
			if (!below(40)) flags |= 0x100;
			if (!below(20)) flags |= 0x20000;
			uint64_t addr = fixed || !below(3) ? anchor() + (below(8) == 0 ? below(PAGE) : 0) : 0;
			int f = anon ? -1 : (int)below(3);
			uint64_t off = anon ? 0 : below(6) * PAGE * (below(4) ? 1 : 16) + (below(30) ? 0 : 123);
			if (!anon && f == 2 && type != 2 && below(2)) prot &= ~2UL;
			if (flags & 0x100010) fit(&addr, len);
			put("\"mmap\",\"args\":{\"addr\":"); puthex(addr); put(",\"len\":"); puthex(len); put(",\"prot\":"); put_prot(prot);
			put(",\"flags\":"); put_mapflags(flags); put(",\"fd\":");
			if (f < 0) put("null"); else { put("\"f"); char d[2] = { (char)('0' + f), 0 }; put(d); put("\""); }
			put(",\"offset\":"); puthex(off); put("}");
			ret = syscall(SYS_mmap, addr, len, prot, flags, f < 0 ? -1 : file_fd[f], off);
			is_addr = 1;
			if (ret > 0 || (ret < 0 && ret > -4096)) {}
			if (ret >= 0 && !(ret < 0)) {
				own(ret, len);
				if ((flags & 3) == 1 && anon) {
					snapshot();
					for (int k = 0; k < nvmas; k++) if (vmas[k].start <= (uint64_t)ret && (uint64_t)ret < vmas[k].end && !strncmp(vmas[k].name, "anon_shared:", 12)) {
						const char *q = vmas[k].name + 12; int n = parsedec(&q); if (!shm_size[n]) shm_size[n] = (len + PAGE - 1) & ~(PAGE - 1);
					}
				}
			}
		} else if (op < 42) {
			uint64_t a = anchor(), len = length(); if (!below(25)) a += 7; if (!below(25)) len = 0;
			fit(&a, len);
			put("\"munmap\",\"args\":{\"addr\":"); puthex(a); put(",\"len\":"); puthex(len); put("}");
			ret = syscall(SYS_munmap, a, len);
		} else if (op < 56) {
			uint64_t a = anchor(), len = length(), prot = below(8); if (!below(30)) prot |= 0x10; if (!below(40)) a += 9;
			fit(&a, len);
			put("\"mprotect\",\"args\":{\"addr\":"); puthex(a); put(",\"len\":"); puthex(len); put(",\"prot\":"); put_prot(prot); put("}");
			ret = syscall(SYS_mprotect, a, len, prot);
		} else if (op < 70) {
			uint64_t a = anchor(), ol = length(), nl = below(3) ? length() : ol;
			if (!below(20)) ol = 0; if (!below(40)) nl = 0;
			uint64_t flags = below(8); if (!below(40)) flags |= 8;
			uint64_t na = (flags & 2) || below(10) == 0 ? anchor() + below(8) * PAGE : 0;
			if ((flags & 4) && below(3)) nl = ol;
			if ((flags & 2) && below(2)) nl = ol;
			fit(&a, ol > nl ? ol : nl);
			if (flags & 2) fit(&na, nl);
			put("\"mremap\",\"args\":{\"old_addr\":"); puthex(a); put(",\"old_len\":"); puthex(ol); put(",\"new_len\":"); puthex(nl);
			put(",\"flags\":"); put_bits(flags, mremap_names, 3); put(",\"new_addr\":"); puthex(na); put("}");
			ret = syscall(SYS_mremap, a, ol, nl, flags, na);
			is_addr = 1;
			if (ret >= 0 && !(ret < 0)) own(ret, nl);
		} else if (op < 74) {
			uint64_t b = below(4) ? cur_brk + (below(40) - 10) * PAGE + below(2) * below(PAGE) : 0;
			if (b && b < initial_brk) b = initial_brk;
			put("\"brk\",\"args\":{\"addr\":"); puthex(b); put("}");
			ret = syscall(SYS_brk, b); cur_brk = ret; is_addr = 1; errno = 0;
		} else if (op < 84) {
			uint64_t a = anchor(), len = length(); if (!below(40)) a += 3;
			fit(&a, len);
			int k = below(sizeof(advices) / sizeof(advices[0]) + 1);
			if (thp_bias && below(3) == 0) k = 8;
			put("\"madvise\",\"args\":{\"addr\":"); puthex(a); put(",\"len\":"); puthex(len); put(",\"advice\":");
			int adv;
			if (k == sizeof(advices) / sizeof(advices[0])) { adv = below(2) ? 5 : 12345; puthex(adv); }
			else { adv = advices[k].v; put("\""); put(advices[k].n); put("\""); }
			put("}");
			ret = syscall(SYS_madvise, a, len, adv);
		} else if (op < 90) {
			uint64_t a = anchor() + (below(5) ? 0 : below(PAGE)), len = length(), fl = below(3) == 0 ? 1 : 0; if (!below(30)) fl |= 8;
			fit(&a, len);
			put("\"mlock\",\"args\":{\"addr\":"); puthex(a); put(",\"len\":"); puthex(len); put(",\"flags\":"); put_bits(fl, mlock_names, 1); put("}");
			ret = syscall(SYS_mlock2, a, len, fl);
		} else if (op < 94) {
			uint64_t a = anchor(), len = length();
			fit(&a, len);
			put("\"munlock\",\"args\":{\"addr\":"); puthex(a); put(",\"len\":"); puthex(len); put("}");
			ret = syscall(SYS_munlock, a, len);
		} else {
			uint64_t a = anchor() & ~(PAGE - 1), len = (1 + below(thp_bias ? 1024 : 64)) * PAGE; int w = thp_bias ? below(5) == 0 : below(2);
			fit(&a, len);
			put("\"touch\",\"args\":{\"addr\":"); puthex(a); put(",\"len\":"); puthex(len); put(w ? ",\"write\":true}" : ",\"write\":false}");
			touch(a, len, w);
			ret = 0;
		}
		if (ret == -1) ret = -errno;
		if (ret < 0 && ret > -4096) {
			static const struct { int e; const char *n; } names[] = { { 1, "EPERM" }, { 9, "EBADF" }, { 11, "EAGAIN" }, { 12, "ENOMEM" }, { 13, "EACCES" },
				{ 14, "EFAULT" }, { 16, "EBUSY" }, { 17, "EEXIST" }, { 22, "EINVAL" }, { 75, "EOVERFLOW" }, { 95, "EOPNOTSUPP" } };
			const char *n = "E?"; for (unsigned k = 0; k < sizeof(names) / sizeof(names[0]); k++) if (names[k].e == -ret) n = names[k].n;
			put(",\"errno\":\""); put(n); put("\"");
		} else if (is_addr) { put(",\"ret\":"); puthex(ret); }
		else put(",\"ret\":0");
		snapshot();
		put(",\"vmas\":"); put_vmas(0); put("}\n"); flush();
	}
	put("{\"type\":\"end\",\"ops\":"); putdec(nops); put("}\n"); flush();
	return 0;
}
