// For sched_getaffinity and CPU_COUNT.
#define _GNU_SOURCE
#include "CPUFeatures.h"
#include <sched.h>
#include <unistd.h>
#include <stdbool.h>

#if defined(__x86_64__)
#include <cpuid.h>
#endif
#if defined(__x86_64__) && defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

enum { known = 1u << 31 };

#if defined(__x86_64__)
// Linux enables the AMX tile data (8 KiB of state per thread) only for processes that ask
// (ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA, Linux 5.16 and later); without it the first tile
// instruction raises SIGILL. Asked once, when the features are first detected.
static bool amx_permitted(void) {
#if defined(__linux__)
    return syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XFEATURE_XTILEDATA */) == 0;
#else
    return false;
#endif
}

// XCR0, read with XGETBV (only after CPUID says OSXSAVE, or the instruction faults). Encoded as
// bytes so that no target attribute is needed for it.
static unsigned long long xcr0(void) {
    unsigned eax, edx;
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}
#endif

static unsigned detect(void) {
    unsigned features = 0;
#if defined(__x86_64__)
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
    bool pclmul = ecx & (1u << 1), sse41 = ecx & (1u << 19), fma = ecx & (1u << 12);
    bool osxsave = ecx & (1u << 27), avx = ecx & (1u << 28);
    if (pclmul && sse41) features |= nn_cpu_pclmul;
    if (!osxsave || !avx) return features;
    unsigned long long xcr = xcr0();
    bool ymm = (xcr & 0x6) == 0x6;              // SSE and AVX state
    bool zmm = ymm && (xcr & 0xe0) == 0xe0;     // opmask, ZMM0-15 upper halves, ZMM16-31
    unsigned max_leaf = __get_cpuid_max(0, 0);
    if (max_leaf < 7 || !ymm) return features;
    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    unsigned leaf7_subleaves = eax;
    bool avx2 = ebx & (1u << 5), avx512f = ebx & (1u << 16), avx512bw = ebx & (1u << 30), avx512vl = ebx & (1u << 31);
    bool avx512vnni = ecx & (1u << 11);
    bool amx_tile = edx & (1u << 24), amx_int8 = edx & (1u << 25), amx_bf16 = edx & (1u << 22);
    bool tile_state = (xcr & 0x60000) == 0x60000;  // XTILECFG and XTILEDATA
    if (!(avx2 && fma)) return features;
    features |= nn_cpu_avx2_fma;
    bool avxvnni = false, avx512bf16 = false;
    if (leaf7_subleaves >= 1) {
        __cpuid_count(7, 1, eax, ebx, ecx, edx);
        avxvnni = eax & (1u << 4);
        avx512bf16 = eax & (1u << 5);
    }
    if (avxvnni) features |= nn_cpu_avx_vnni;
    if (zmm && avx512f && avx512bw && avx512vl) {
        features |= nn_cpu_avx512;
        if (avx512vnni) features |= nn_cpu_avx512_vnni;
        if (avx512bf16) features |= nn_cpu_avx512_bf16;
        bool tiles = amx_tile && tile_state && (amx_int8 || amx_bf16) && amx_permitted();
        if (tiles && amx_int8 && avx512vnni) features |= nn_cpu_amx_int8;
        if (tiles && amx_bf16 && avx512bf16) features |= nn_cpu_amx_bf16;
    }
#endif
    return features;
}

unsigned nn_cpu_features(void) {
    static unsigned cached;  // racing first calls store the same answer
    unsigned features = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (!(features & known)) {
        features = detect() | known;
        __atomic_store_n(&cached, features, __ATOMIC_RELAXED);
    }
    return features & ~known;
}

int nn_available_cpus(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    return online > 0 ? (int)online : 1;
}
