/* Make this process's CPUID report an AVX2 CPU (no AVX-512, VNNI-512, BF16 or AMX), for benchmarks.
 *
 * Loaded with LD_PRELOAD by redheart.pipelines.isa_hold. Every library that picks its kernels from CPUID --
 * onnxruntime's MLAS, oneDNN, MKL, FBGEMM, torch's dispatcher -- then picks what it would on an AVX2 CPU. The
 * constructor turns on CPUID faulting (Linux arch_prctl(ARCH_SET_CPUID, 0), on CPUs with "cpuid_fault"; inherited
 * by every thread the process starts): each CPUID instruction then raises SIGSEGV, which the handler below answers
 * with the real CPUID result minus the masked feature bits. sigaction() and signal() for SIGSEGV are interposed
 * so that a handler installed later (Python's faulthandler, say) is chained behind this one rather than replacing
 * it; a real fault still reaches that handler, or the default action. glibc reads CPUID before any constructor
 * runs, so its own string functions keep the CPU's vector level.
 */
#define _GNU_SOURCE
#include <cpuid.h>
#include <dlfcn.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#define ARCH_SET_CPUID 0x1012

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);

static sigaction_fn real_sigaction;
static struct sigaction chained; /* what the process asked SIGSEGV to do */
static int held;

/* Leaf 7 sub-leaf 0: EBX AVX512F DQ IFMA PF ER CD BW VL; ECX VBMI VBMI2 VNNI BITALG VPOPCNTDQ;
 * EDX 4VNNIW 4FMAPS VP2INTERSECT AMX-BF16 AVX512-FP16 AMX-TILE AMX-INT8. Leaf 7 sub-leaf 1: EAX AVX512-BF16. */
static const unsigned leaf7_ebx = (1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) | (1u << 27) | (1u << 28) |
                                  (1u << 30) | (1u << 31);
static const unsigned leaf7_ecx = (1u << 1) | (1u << 6) | (1u << 11) | (1u << 12) | (1u << 14);
static const unsigned leaf7_edx = (1u << 2) | (1u << 3) | (1u << 8) | (1u << 22) | (1u << 23) | (1u << 24) |
                                  (1u << 25);
static const unsigned leaf7_1_eax = 1u << 5;

static void answer_cpuid(greg_t *regs) {
    unsigned a, b, c, d, leaf = (unsigned)regs[REG_RAX], sub = (unsigned)regs[REG_RCX];
    syscall(SYS_arch_prctl, ARCH_SET_CPUID, 1);
    __cpuid_count(leaf, sub, a, b, c, d);
    syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0);
    if (leaf == 7 && sub == 0) {
        b &= ~leaf7_ebx;
        c &= ~leaf7_ecx;
        d &= ~leaf7_edx;
    } else if (leaf == 7 && sub == 1) {
        a &= ~leaf7_1_eax;
    }
    regs[REG_RAX] = a;
    regs[REG_RBX] = b;
    regs[REG_RCX] = c;
    regs[REG_RDX] = d;
    regs[REG_RIP] += 2; /* CPUID is 0F A2 */
}

static void on_segv(int sig, siginfo_t *info, void *context) {
    greg_t *regs = ((ucontext_t *)context)->uc_mcontext.gregs;
    if (info->si_code == SI_KERNEL) { /* a general-protection fault: is it CPUID? */
        const unsigned char *ip = (const unsigned char *)regs[REG_RIP];
        if (ip[0] == 0x0F && ip[1] == 0xA2) {
            answer_cpuid(regs);
            return;
        }
    }
    if (chained.sa_flags & SA_SIGINFO) {
        chained.sa_sigaction(sig, info, context);
        return;
    }
    if (chained.sa_handler != SIG_DFL && chained.sa_handler != SIG_IGN) {
        chained.sa_handler(sig);
        return;
    }
    /* The default action: a fault re-executes and kills; a raised signal is raised again. */
    struct sigaction fallback;
    memset(&fallback, 0, sizeof fallback);
    fallback.sa_handler = SIG_DFL;
    real_sigaction(sig, &fallback, NULL);
    if (info->si_code <= 0) {
        raise(sig);
    }
}

int sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
    if (!real_sigaction) {
        real_sigaction = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
    }
    if (sig != SIGSEGV || !held) {
        return real_sigaction(sig, act, old);
    }
    if (old) {
        *old = chained;
    }
    if (act) {
        chained = *act;
    }
    return 0;
}

sighandler_t signal(int sig, sighandler_t handler) {
    if (sig != SIGSEGV || !held) {
        sighandler_t (*real_signal)(int, sighandler_t) = (sighandler_t(*)(int, sighandler_t))dlsym(RTLD_NEXT, "signal");
        return real_signal(sig, handler);
    }
    struct sigaction act, old;
    memset(&act, 0, sizeof act);
    act.sa_handler = handler;
    act.sa_flags = SA_RESTART;
    sigemptyset(&act.sa_mask);
    return sigaction(sig, &act, &old) == 0 ? old.sa_handler : SIG_ERR;
}

/* 1 when this process's CPUID answers are masked to AVX2 (read by redheart.pipelines.precision.cpuid_held). */
int redheart_cpuid_held(void) { return held; }

__attribute__((constructor)) static void hold_avx2(void) {
    struct sigaction action;
    real_sigaction = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_segv;
    action.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    if (real_sigaction(SIGSEGV, &action, &chained) != 0) {
        return;
    }
    if (syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0) != 0) { /* no CPUID faulting: leave everything as it was */
        real_sigaction(SIGSEGV, &chained, NULL);
        return;
    }
    held = 1;
}
