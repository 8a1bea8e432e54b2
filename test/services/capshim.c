/*
 * capshim: lets apptainer's starter run as root on machines whose root lacks
 * some capabilities in its bounding set (here CAP_SYS_RESOURCE).
 *
 * The starter asks for every capability and aborts when capset(2) refuses:
 * "Requesting capability set 0x000001ffffffffff while permitted capability
 * set is 0x000001fffeffffff". Loaded into the starter with
 * `patchelf --add-needed`, this library reads the bounding set once and then
 *   - reports the withheld capabilities as present in capget results (only for
 *     a process that holds every other capability, i.e. real root),
 *   - removes them from the sets passed to capset,
 *   - turns PR_CAP_AMBIENT_RAISE of a withheld capability into a no-op.
 * Test machinery only: installed by install-apptainer.sh into the test cache,
 * never onto the system.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <linux/capability.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static uint64_t withheld; /* capabilities missing from the bounding set */
static uint64_t bounding; /* capabilities present in it */
static long (*real_syscall)(long, ...);
static int (*real_prctl)(int, ...);

__attribute__((constructor)) static void capshim_init(void) {
  real_syscall = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
  real_prctl = (int (*)(int, ...))dlsym(RTLD_NEXT, "prctl");
  for (int i = 0; i < 64; i++) {
    int r = real_prctl(PR_CAPBSET_READ, (unsigned long)i, 0UL, 0UL, 0UL);
    if (r < 0) break; /* EINVAL: no capability with this number */
    if (r == 0) withheld |= 1ULL << i;
    else bounding |= 1ULL << i;
  }
}

static uint64_t join(uint32_t lo, uint32_t hi) { return (uint64_t)lo | ((uint64_t)hi << 32); }

static void after_capget(cap_user_data_t d) {
  if (!d || !withheld) return;
  uint64_t permitted = join(d[0].permitted, d[1].permitted);
  if ((permitted & bounding) != bounding) return; /* not fully privileged: tell the truth */
  d[0].permitted |= (uint32_t)withheld;
  d[1].permitted |= (uint32_t)(withheld >> 32);
  uint64_t effective = join(d[0].effective, d[1].effective);
  if ((effective & bounding) == bounding) {
    d[0].effective |= (uint32_t)withheld;
    d[1].effective |= (uint32_t)(withheld >> 32);
  }
}

static void before_capset(cap_user_data_t d) {
  if (!d || !withheld) return;
  for (int k = 0; k < 2; k++) {
    uint32_t mask = ~(uint32_t)(withheld >> (32 * k));
    d[k].effective &= mask;
    d[k].permitted &= mask;
    d[k].inheritable &= mask;
  }
}

/* Versions 2 and 3 of the capability ABI carry two 32-bit words per set. */
static int two_words(long hdr) {
  return hdr && ((cap_user_header_t)hdr)->version != _LINUX_CAPABILITY_VERSION_1;
}

static long do_capget(long hdr, long data) {
  long r = real_syscall(SYS_capget, hdr, data);
  if (r == 0 && two_words(hdr)) after_capget((cap_user_data_t)data);
  return r;
}

static long do_capset(long hdr, long data) {
  struct __user_cap_data_struct copy[2];
  cap_user_data_t d = (cap_user_data_t)data;
  if (d && two_words(hdr)) {
    copy[0] = d[0];
    copy[1] = d[1];
    before_capset(copy);
    d = copy;
  }
  return real_syscall(SYS_capset, hdr, (long)d);
}

long syscall(long number, ...) {
  va_list ap;
  long a[6];
  va_start(ap, number);
  for (int i = 0; i < 6; i++) a[i] = va_arg(ap, long);
  va_end(ap);
  if (number == SYS_capget) return do_capget(a[0], a[1]);
  if (number == SYS_capset) return do_capset(a[0], a[1]);
  return real_syscall(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

int capget(cap_user_header_t hdr, cap_user_data_t data) { return (int)do_capget((long)hdr, (long)data); }
int capset(cap_user_header_t hdr, const cap_user_data_t data) { return (int)do_capset((long)hdr, (long)data); }

int prctl(int option, ...) {
  va_list ap;
  unsigned long a[4];
  va_start(ap, option);
  for (int i = 0; i < 4; i++) a[i] = va_arg(ap, unsigned long);
  va_end(ap);
  if (option == PR_CAP_AMBIENT && a[0] == PR_CAP_AMBIENT_RAISE && a[1] < 64 && (withheld & (1ULL << a[1]))) return 0;
  return real_prctl(option, a[0], a[1], a[2], a[3]);
}
