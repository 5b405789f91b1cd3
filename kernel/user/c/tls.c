/*
 * tls_c: thread-local storage and the FS base. musl finds the PT_TLS segment
 * through AT_PHDR, copies its initial values (.tdata) and zeros (.tbss) below its
 * thread structure, and points FS at that structure with arch_prctl(ARCH_SET_FS);
 * every `__thread` access is then an FS-relative load. The kernel must keep each
 * process's FS base across context switches.
 *
 * The second half checks exactly that: the child moves its FS base to a block of
 * its own (raw arch_prctl, no libc in between, since errno is found through FS),
 * and parent and child then yield to each other and spin through timer
 * preemptions, each checking that %fs:0 still holds its own value.
 *
 * Exit 0 if every check passes, 1 otherwise.
 */
#include <sched.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define ROUNDS 200
/* arch_prctl codes, from Linux's asm/prctl.h (musl has no header for them) */
#define ARCH_SET_FS 0x1002
#define ARCH_GET_FS 0x1003

static __thread long initialized = 0x1234abcd;
static __thread long zeroed[64];

/* The first word of the block FS points at: musl's thread structure starts with a pointer to itself. */
static long fs_word0(void)
{
    long v;
    __asm__ volatile("mov %%fs:0, %0" : "=r"(v));
    return v;
}

static long raw_syscall2(long nr, long a, long b)
{
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b) : "rcx", "r11", "memory");
    return ret;
}

static int check_tls(void)
{
    for (int i = 0; i < 64; i++)
        if (zeroed[i] != 0)
            return 0;
    if (initialized != 0x1234abcd)
        return 0;
    initialized++;
    zeroed[63] = 5;
    return initialized == 0x1234abce && zeroed[63] == 5;
}

/* Runs with the FS base moved: raw syscalls only, no libc. */
static int child_with_own_fs(void)
{
    static long own_block[8];
    long saved = 0;
    own_block[0] = (long)own_block;
    if (raw_syscall2(SYS_arch_prctl, ARCH_GET_FS, (long)&saved) != 0 || saved != fs_word0())
        return 2;
    if (raw_syscall2(SYS_arch_prctl, ARCH_SET_FS, (long)own_block) != 0)
        return 3;
    int bad = 0;
    for (int round = 0; round < ROUNDS; round++) {
        raw_syscall2(SYS_sched_yield, 0, 0);
        for (volatile int spin = 0; spin < 20000; spin++)
            bad |= fs_word0() != (long)own_block;
    }
    raw_syscall2(SYS_arch_prctl, ARCH_SET_FS, saved);
    return bad ? 4 : 0;
}

int main(void)
{
    if (!check_tls()) {
        printf("FAIL: tls_c: __thread variables do not start with their initial values\n");
        return 1;
    }
    long self = fs_word0();
    printf("tls_c: FS base %#lx, .tdata and .tbss initialized\n", self);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0)
        _exit(child_with_own_fs());
    int bad = 0;
    for (int round = 0; round < ROUNDS; round++) {
        sched_yield();
        for (volatile int spin = 0; spin < 20000; spin++)
            bad |= fs_word0() != self;
    }
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        printf("FAIL: tls_c: the child saw another FS base (exit %d)\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        return 1;
    }
    if (bad) {
        printf("FAIL: tls_c: the parent saw the child's FS base\n");
        return 1;
    }
    printf("tls_c: parent and child kept their own FS base over %d switches\n", ROUNDS);
    return 0;
}
