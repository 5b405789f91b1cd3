/*
 * syscalls_c: the calls a C library makes on its own, with the arguments and the
 * errnos Linux gives them. The same binary passes on Linux (run it on the host:
 * `musl-gcc -static syscalls.c && ./a.out`), so every expectation here is Linux's.
 *
 * Exit 0 if every result matches, 1 (after a "FAIL:" line per mismatch) otherwise.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define ARCH_SET_GS 0x1001
#define ARCH_SET_FS 0x1002
#define ARCH_GET_FS 0x1003
#define ARCH_GET_GS 0x1004

static int failures;

/* Checks that `ret` is -1 with errno `expected` (the result of a libc call). */
static void expect_errno(const char *what, long ret, int expected)
{
    if (ret != -1 || errno != expected) {
        printf("FAIL: %s: returned %ld, errno %d (%s); expected errno %d (%s)\n", what, ret, errno, strerror(errno),
               expected, strerror(expected));
        failures++;
    }
}

static void expect(const char *what, int ok)
{
    if (!ok) {
        printf("FAIL: %s\n", what);
        failures++;
    }
}

/* Raw rt_sigprocmask: musl's sigprocmask hides the kernel's sigsetsize argument. */
static long raw_sigprocmask(int how, const uint64_t *set, uint64_t *old, long size)
{
    return syscall(SYS_rt_sigprocmask, how, set, old, size);
}

static void check_arch_prctl(void)
{
    unsigned long fs = 0, gs = 0;
    expect("ARCH_GET_FS", syscall(SYS_arch_prctl, ARCH_GET_FS, &fs) == 0 && fs != 0);
    long word0;
    __asm__ volatile("mov %%fs:0, %0" : "=r"(word0));
    expect("ARCH_GET_FS is the thread pointer musl set (its first word points to itself)", (unsigned long)word0 == fs);
    expect_errno("ARCH_GET_FS to a bad pointer", syscall(SYS_arch_prctl, ARCH_GET_FS, (void *)8), EFAULT);
    expect_errno("ARCH_SET_FS to a kernel address", syscall(SYS_arch_prctl, ARCH_SET_FS, 0xffff800000000000ul), EPERM);
    expect_errno("arch_prctl with an unknown code", syscall(SYS_arch_prctl, 0x1234, 0), EINVAL);
    expect("ARCH_SET_GS then ARCH_GET_GS", syscall(SYS_arch_prctl, ARCH_SET_GS, 0x12345000ul) == 0 &&
                                               syscall(SYS_arch_prctl, ARCH_GET_GS, &gs) == 0 && gs == 0x12345000ul);
    expect("ARCH_SET_GS back to 0", syscall(SYS_arch_prctl, ARCH_SET_GS, 0ul) == 0);
}

static void check_writev(void)
{
    struct iovec iov[3] = {
        {.iov_base = "writev: ", .iov_len = 8},
        {.iov_base = "three buffers, ", .iov_len = 15},
        {.iov_base = "one line\n", .iov_len = 9},
    };
    expect("writev of three buffers returns the total", writev(1, iov, 3) == 32);
    expect("writev of nothing returns 0", writev(1, iov, 0) == 0);
    expect_errno("writev to a closed fd", writev(57, iov, 3), EBADF);
    expect_errno("writev with IOV_MAX + 1 buffers", writev(1, iov, 1025), EINVAL);
    expect_errno("writev with a bad iovec array", writev(1, (struct iovec *)8, 1), EFAULT);
    struct iovec bad[2] = {{.iov_base = (void *)8, .iov_len = 4}, {.iov_base = "x", .iov_len = 1}};
    expect_errno("writev whose first buffer is bad", writev(1, bad, 2), EFAULT);
    struct iovec huge[2] = {{.iov_base = "x", .iov_len = SIZE_MAX / 2 + 1}, {.iov_base = "x", .iov_len = 1}};
    expect_errno("writev with a total past SSIZE_MAX", writev(1, huge, 2), EINVAL);
}

static void check_ioctl(void)
{
    struct winsize ws;
    expect_errno("TIOCGWINSZ on a closed fd", ioctl(57, TIOCGWINSZ, &ws), EBADF);
    /* Under `cargo test` and on a pipe stdout is no terminal; on a terminal Linux answers. */
    if (!isatty(1))
        expect_errno("TIOCGWINSZ on stdout (not a terminal)", ioctl(1, TIOCGWINSZ, &ws), ENOTTY);
}

static void check_sigprocmask(void)
{
    uint64_t old = ~0ull, set = (1ull << (SIGUSR1 - 1)) | (1ull << (SIGKILL - 1)) | (1ull << (SIGSTOP - 1));
    expect("rt_sigprocmask query", raw_sigprocmask(SIG_BLOCK, NULL, &old, 8) == 0 && old == 0);
    expect_errno("rt_sigprocmask with a 4-byte set", raw_sigprocmask(SIG_BLOCK, &set, NULL, 4), EINVAL);
    expect_errno("rt_sigprocmask with a bad how", raw_sigprocmask(7, &set, NULL, 8), EINVAL);
    expect("a bad how without a set is only a query", raw_sigprocmask(7, NULL, &old, 8) == 0);
    expect_errno("rt_sigprocmask with a bad set pointer", raw_sigprocmask(SIG_BLOCK, (uint64_t *)8, NULL, 8), EFAULT);
    expect("block SIGUSR1 (SIGKILL and SIGSTOP asked too)", raw_sigprocmask(SIG_BLOCK, &set, &old, 8) == 0 && old == 0);
    expect("SIGKILL and SIGSTOP cannot be blocked",
           raw_sigprocmask(SIG_BLOCK, NULL, &old, 8) == 0 && old == (1ull << (SIGUSR1 - 1)));
    pid_t pid = fork();
    if (pid == 0) {
        uint64_t child_mask = 0;
        raw_sigprocmask(SIG_BLOCK, NULL, &child_mask, 8);
        _exit(child_mask == (1ull << (SIGUSR1 - 1)) ? 0 : 1);
    }
    int status;
    expect("fork inherits the mask", waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    uint64_t usr1 = 1ull << (SIGUSR1 - 1);
    expect("unblock SIGUSR1", raw_sigprocmask(SIG_UNBLOCK, &usr1, &old, 8) == 0 && old == usr1);
    expect("the mask is empty again", raw_sigprocmask(SIG_SETMASK, NULL, &old, 8) == 0 && old == 0);
}

static void check_ids_and_sysinfo(void)
{
    expect("gettid is the pid of a one-thread process", syscall(SYS_gettid) == getpid());
    expect("getuid == geteuid, getgid == getegid", getuid() == geteuid() && getgid() == getegid());
    expect("set_tid_address returns the thread id", syscall(SYS_set_tid_address, NULL) == getpid());
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0)
        _exit(getppid() == parent ? 0 : 1);
    int status;
    expect("getppid in a child is the parent", waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    struct sysinfo info;
    expect("sysinfo", sysinfo(&info) == 0);
    expect("sysinfo: free RAM below total RAM", info.mem_unit >= 1 && info.totalram > 0 && info.freeram <= info.totalram);
    expect("sysinfo: free swap at most total swap", info.freeswap <= info.totalswap);
    expect("sysinfo: at least this process", info.procs >= 1);
    expect("sysconf(_SC_PHYS_PAGES) from sysinfo", sysconf(_SC_PHYS_PAGES) == (long)((unsigned long long)info.totalram * info.mem_unit / 4096));
    expect_errno("sysinfo to a bad pointer", syscall(SYS_sysinfo, (void *)8), EFAULT);
}

/* sched_getaffinity, what sysconf(_SC_NPROCESSORS_ONLN) asks: the online CPUs
 * (`cpus=N` on the command line: exactly N of them). */
static void check_affinity(int argc, char **argv)
{
    long nr_cpus = sysconf(_SC_NPROCESSORS_ONLN);
    expect("sysconf(_SC_NPROCESSORS_ONLN) counts at least this CPU", nr_cpus >= 1);
    for (int i = 1; i < argc; i++)
        if (strncmp(argv[i], "cpus=", 5) == 0 && nr_cpus != atol(argv[i] + 5)) {
            printf("FAIL: syscalls_c: %ld CPUs online, the kernel runs %s\n", nr_cpus, argv[i] + 5);
            failures++;
        }
    uint64_t mask[16] = {0};
    long bytes = syscall(SYS_sched_getaffinity, 0, sizeof mask, mask), nr_bits = 0;
    for (long i = 0; i < bytes / 8 && i < 16; i++)
        nr_bits += __builtin_popcountll(mask[i]);
    /* Linux writes its cpumask's size: one long up to 64 possible CPUs (ours: 16). */
    expect("sched_getaffinity: whole longs, one bit per CPU online", bytes >= 8 && bytes % 8 == 0 && nr_bits == nr_cpus);
    expect_errno("sched_getaffinity into 4 bytes", syscall(SYS_sched_getaffinity, 0, 4, mask), EINVAL);
    expect_errno("sched_getaffinity of no task", syscall(SYS_sched_getaffinity, 0x3ffffff0, sizeof mask, mask), ESRCH);
    expect_errno("sched_getaffinity to a bad pointer", syscall(SYS_sched_getaffinity, 0, sizeof mask, (void *)8), EFAULT);
}

int main(int argc, char **argv)
{
    check_arch_prctl();
    check_affinity(argc, argv);
    check_writev();
    check_ioctl();
    check_sigprocmask();
    check_ids_and_sysinfo();
    /* a number no kernel has */
    expect_errno("syscall 4000", syscall(4000), ENOSYS);
    if (failures) {
        printf("syscalls_c: %d check(s) failed\n", failures);
        return 1;
    }
    printf("syscalls_c: every call answered as Linux does\n");
    return 0;
}
