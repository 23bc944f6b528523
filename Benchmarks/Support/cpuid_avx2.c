// A benchmark aid, loaded with LD_PRELOAD: the process (and the threads it starts) sees this CPU
// as one without AVX-512, AVX-VNNI or AMX, so that onnxruntime, NumPy and our engine choose the
// kernels they would choose on an AVX2 machine, on the same silicon. The other instructions stay
// as the CPU reports them.
//
// How: Linux's CPUID faulting (`arch_prctl(ARCH_SET_CPUID, 0)`, where /proc/cpuinfo lists
// `cpuid_fault`; KVM provides it to guests) turns every `cpuid` of the process into a SIGSEGV;
// the handler executes the instruction with faulting off, clears the feature bits below from the
// answer, and resumes after the instruction. Libraries detect their kernels when they load or
// first run, after this constructor: onnxruntime and NumPy under Python; our engine on its
// first product. Code that read CPUID before (the dynamic loader's choice of glibc's string
// functions) keeps what it saw.
//
// Build: cc -O2 -shared -fPIC -o cpuid_avx2.so cpuid_avx2.c. `Benchmarks/bench.py --cpu avx2`
// builds and uses it. Without CPUID faulting it prints one line and the process goes on
// unmasked (bench.py checks what NumPy and our engine detected before it reports anything).
#define _GNU_SOURCE
#include <cpuid.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

enum { arch_set_cpuid = 0x1012 };

// Leaf 7, subleaf 0: EBX AVX512F (16), DQ (17), IFMA (21), PF (26), ER (27), CD (28), BW (30),
// VL (31); ECX AVX512_VBMI (1), VBMI2 (6), VNNI (11), BITALG (12), VPOPCNTDQ (14); EDX
// 4VNNIW (2), 4FMAPS (3), VP2INTERSECT (8), AMX_BF16 (22), AVX512_FP16 (23), AMX_TILE (24),
// AMX_INT8 (25). Subleaf 1: EAX AVX_VNNI (4), AVX512_BF16 (5), AVX_IFMA (23).
static const uint32_t leaf7_ebx = 1u << 16 | 1u << 17 | 1u << 21 | 1u << 26 | 1u << 27 | 1u << 28 | 1u << 30 | 1u << 31;
static const uint32_t leaf7_ecx = 1u << 1 | 1u << 6 | 1u << 11 | 1u << 12 | 1u << 14;
static const uint32_t leaf7_edx = 1u << 2 | 1u << 3 | 1u << 8 | 1u << 22 | 1u << 23 | 1u << 24 | 1u << 25;
static const uint32_t leaf7_1_eax = 1u << 4 | 1u << 5 | 1u << 23;

static void on_fault(int signal, siginfo_t *info, void *context) {
    (void)info;
    greg_t *r = ((ucontext_t *)context)->uc_mcontext.gregs;
    const uint8_t *ip = (const uint8_t *)r[REG_RIP];
    if (ip[0] != 0x0f || ip[1] != 0xa2) {
        // A real fault: let it happen again with the default action (the usual crash).
        struct sigaction fallback;
        memset(&fallback, 0, sizeof fallback);
        fallback.sa_handler = SIG_DFL;
        sigaction(signal, &fallback, NULL);
        return;
    }
    uint32_t leaf = (uint32_t)r[REG_RAX], subleaf = (uint32_t)r[REG_RCX], a, b, c, d;
    syscall(SYS_arch_prctl, arch_set_cpuid, 1);
    __cpuid_count(leaf, subleaf, a, b, c, d);
    syscall(SYS_arch_prctl, arch_set_cpuid, 0);
    if (leaf == 7 && subleaf == 0) {
        b &= ~leaf7_ebx;
        c &= ~leaf7_ecx;
        d &= ~leaf7_edx;
    } else if (leaf == 7 && subleaf == 1) {
        a &= ~leaf7_1_eax;
    }
    r[REG_RAX] = a;
    r[REG_RBX] = b;
    r[REG_RCX] = c;
    r[REG_RDX] = d;
    r[REG_RIP] += 2;
}

__attribute__((constructor)) static void mask_cpuid(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_fault;
    action.sa_flags = SA_SIGINFO;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGSEGV, &action, NULL) != 0 || syscall(SYS_arch_prctl, arch_set_cpuid, 0) != 0) {
        fprintf(stderr, "cpuid_avx2: this kernel or CPU has no CPUID faulting; CPUID is not masked\n");
    }
}
