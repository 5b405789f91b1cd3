/*
 * pagefault_c: will-it-scale's page_fault1 and page_fault2, in processes and in
 * threads, for the scaling table of chapter 19 (issue #13). The same file runs on
 * our kernel and on Linux (`--linux-peer=pagefault`).
 *
 *   page_fault1  mmap 16 MiB of anonymous memory (MAP_PRIVATE), write one word in
 *                every page (a fault each: a zeroed frame), check, munmap
 *   page_fault2  the same on a MAP_PRIVATE mapping of a 16 MiB file of the task's
 *                own (sparse, made by ftruncate): every write fault copies the
 *                page cache's page (copy-on-write from the page cache)
 *
 * Each of `tasks=N` tasks (default: the CPUs online, sched_getaffinity) runs one
 * warm-up round, waits until all are ready, then repeats rounds for `secs=S`
 * seconds (default 2); `mib=M` maps M MiB instead of 16; `row=N` runs only row N (0-3,
 * in the order printed; `row=4` and `row=5`, never run otherwise, are the floors:
 * int3 round trips, ours only, and null system calls, in processes). A row is the sum of the tasks' faults per second, as
 * will-it-scale adds its tasks' iterations. Processes are forked; threads made
 * by pthread_create share one address space (and its lock) as will-it-scale's
 * threads mode does. After the rounds every page_fault2 file must still read
 * as zeros (a private write never reaches the file).
 *
 * The files live in the working directory (our kernel: the ext2 root; Linux: the
 * same ext2 disk at /mnt). Output, one line per row, then "done":
 *
 *   pagefault: row=page_fault1 processes tasks=2 faults_per_s=123456
 *
 * Exit 0 if every task saw its own words and every check passed, 1 otherwise.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#define MAX_TASKS 16

/* What the tasks share with the parent: a MAP_SHARED page, so forked children too. */
struct shared {
    int nr_ready;
    int go;
    int failures;
    long faults[MAX_TASKS];
    long ns[MAX_TASKS];
};

static struct shared *shared;
static long duration_ns = 2000000000L;
static long map_bytes = 16L << 20; /* mib=N */
static long nr_pages = (16L << 20) / PAGE;
static int is_file_test;

static long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}

static void fail(long task, const char *what, long detail)
{
    printf("FAIL: pagefault_c: task %ld: %s (%ld)\n", task, what, detail);
    fflush(stdout);
    __atomic_add_fetch(&shared->failures, 1, __ATOMIC_SEQ_CST);
}

static uint64_t word(long task, long round, long page)
{
    return ((uint64_t)task << 48) | ((uint64_t)(round & 0xffffff) << 24) | (uint64_t)page;
}

/* What a row's rounds do: faults (rows 0-3), or, for rows 4 and 5 (asked for by
 * row=N only), the floors the fault rows stand on: an exception round trip from
 * ring 3 (`int3`, which our kernel counts and returns from; a SIGTRAP on Linux, so
 * row 4 is ours only) and a null system call (getppid), nr_pages of them a round. */
enum { FAULTS, INT3_ROUND_TRIPS, NULL_SYSCALLS };
static int round_kind = FAULTS;

/* One round: map, write a word in every page, check them, unmap. Returns 0 if all held. */
static int one_round(long task, int fd, long round)
{
    if (round_kind == INT3_ROUND_TRIPS) {
        for (long i = 0; i < nr_pages; i++)
            __asm__ volatile("int3");
        return 0;
    }
    if (round_kind == NULL_SYSCALLS) {
        for (long i = 0; i < nr_pages; i++)
            if (getppid() <= 0) {
                fail(task, "getppid failed", i);
                return 1;
            }
        return 0;
    }
    int flags = fd < 0 ? MAP_PRIVATE | MAP_ANONYMOUS : MAP_PRIVATE;
    char *base = mmap(NULL, map_bytes, PROT_READ | PROT_WRITE, flags, fd, 0);
    if (base == MAP_FAILED) {
        fail(task, "mmap failed", round);
        return 1;
    }
    for (long page = 0; page < nr_pages; page++)
        *(volatile uint64_t *)(base + page * PAGE) = word(task, round, page);
    int bad = 0;
    for (long page = 0; page < nr_pages && !bad; page++) {
        uint64_t *p = (uint64_t *)(base + page * PAGE);
        /* The word written, and the rest of the page as the file (or zero) gave it. */
        if (p[0] != word(task, round, page) || p[1] != 0 || p[PAGE / 8 - 1] != 0) {
            fail(task, "a page does not hold what was written", page);
            bad = 1;
        }
    }
    if (munmap(base, map_bytes) != 0) {
        fail(task, "munmap failed", round);
        bad = 1;
    }
    return bad;
}

/* A private write must not reach the file: it still reads as zeros. */
static void check_file_is_zero(long task, int fd)
{
    static __thread char buf[PAGE];
    for (long page = 0; page < nr_pages; page += 7) {
        /* lseek and read, not pread: the fd is the task's own (and ours has no pread64). */
        if (lseek(fd, page * PAGE, SEEK_SET) != page * PAGE || read(fd, buf, PAGE) != PAGE) {
            fail(task, "reading the file back failed", page);
            return;
        }
        for (int i = 0; i < PAGE; i++)
            if (buf[i] != 0) {
                fail(task, "a MAP_PRIVATE write reached the file at page", page);
                return;
            }
    }
}

/* Opens the task's file of map_bytes (a hole, read as zeros), or returns -1 on failure. */
static int open_file(long task, char *name, size_t size)
{
    snprintf(name, size, "pagefault.%d.%ld", (int)getpid(), task);
    int fd = open(name, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        fail(task, "open failed", 0);
        return -1;
    }
    if (ftruncate(fd, map_bytes) != 0) {
        fail(task, "ftruncate failed", 0);
        close(fd);
        return -1;
    }
    return fd;
}

/* A task: its file (page_fault2), the warm-up round, the wait for the start, the rounds. */
static void *task_main(void *arg)
{
    long task = (long)arg;
    char name[64];
    int fd = -1;
    if (is_file_test && (fd = open_file(task, name, sizeof name)) < 0)
        return NULL;
    one_round(task, fd, 0);
    __atomic_add_fetch(&shared->nr_ready, 1, __ATOMIC_SEQ_CST);
    while (!__atomic_load_n(&shared->go, __ATOMIC_SEQ_CST))
        sched_yield();
    long start = now_ns(), faults = 0, round = 1;
    do {
        if (one_round(task, fd, round++))
            break;
        faults += nr_pages;
    } while (now_ns() - start < duration_ns);
    shared->ns[task] = now_ns() - start;
    shared->faults[task] = faults;
    if (fd >= 0) {
        check_file_is_zero(task, fd);
        close(fd);
        if (unlink(name) != 0)
            fail(task, "unlink failed", 0);
    }
    return NULL;
}

/* Starts the tasks, lets them go together, waits for all; returns 0 if all started. */
static int run_tasks(int nr_tasks, int as_threads)
{
    pthread_t threads[MAX_TASKS];
    for (long t = 0; t < nr_tasks; t++) {
        if (as_threads) {
            if (pthread_create(&threads[t], NULL, task_main, (void *)t) != 0) {
                fail(t, "pthread_create failed", 0);
                return 1;
            }
            continue;
        }
        pid_t pid = fork();
        if (pid < 0) {
            fail(t, "fork failed", 0);
            return 1;
        }
        if (pid == 0) {
            task_main((void *)t);
            _exit(0);
        }
    }
    while (__atomic_load_n(&shared->nr_ready, __ATOMIC_SEQ_CST) < nr_tasks &&
           !__atomic_load_n(&shared->failures, __ATOMIC_SEQ_CST))
        sched_yield();
    __atomic_store_n(&shared->go, 1, __ATOMIC_SEQ_CST);
    for (int t = 0; t < nr_tasks; t++) {
        if (as_threads) {
            pthread_join(threads[t], NULL);
            continue;
        }
        int status;
        if (wait(&status) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            fail(t, "a child did not exit with 0", status);
    }
    return 0;
}

/* One row: nr_tasks tasks of one kind; prints the sum of their faults per second. */
static void row(const char *test, int file_test, int as_threads, int nr_tasks)
{
    memset(shared, 0, sizeof *shared);
    is_file_test = file_test;
    if (run_tasks(nr_tasks, as_threads) != 0)
        return;
    double per_s = 0;
    long faults = 0;
    for (int t = 0; t < nr_tasks; t++) {
        faults += shared->faults[t];
        if (shared->ns[t] > 0)
            per_s += shared->faults[t] * 1e9 / shared->ns[t];
    }
    printf("pagefault: row=%s %s tasks=%d faults_per_s=%.0f (%ld faults)\n", test,
           as_threads ? "threads" : "processes", nr_tasks, per_s, faults);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    int nr_tasks = (int)sysconf(_SC_NPROCESSORS_ONLN);
    int only_row = -1; /* row=N: only the Nth row (0-3, in the order printed; 4, 5: the floors) */
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "tasks=", 6) == 0)
            nr_tasks = atoi(argv[i] + 6);
        else if (strncmp(argv[i], "secs=", 5) == 0)
            duration_ns = atol(argv[i] + 5) * 1000000000L;
        else if (strncmp(argv[i], "mib=", 4) == 0)
            map_bytes = atol(argv[i] + 4) << 20;
        else if (strncmp(argv[i], "row=", 4) == 0)
            only_row = atoi(argv[i] + 4);
    }
    nr_pages = map_bytes / PAGE;
    if (nr_tasks < 1 || nr_tasks > MAX_TASKS || duration_ns <= 0 || map_bytes <= 0) {
        printf("FAIL: pagefault_c: tasks=1..%d, secs>0 and mib>0\n", MAX_TASKS);
        return 1;
    }
    shared = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED) {
        printf("FAIL: pagefault_c: no shared page\n");
        return 1;
    }
    printf("pagefault: page_fault1/2 against %ld CPUs online: %d tasks, %ld s per row, %ld MiB per round\n",
           sysconf(_SC_NPROCESSORS_ONLN), nr_tasks, duration_ns / 1000000000L, map_bytes >> 20);
    fflush(stdout);
    int failures = 0;
    if (only_row == 4 || only_row == 5) {
        round_kind = only_row == 4 ? INT3_ROUND_TRIPS : NULL_SYSCALLS;
        row(only_row == 4 ? "int3_round_trips" : "null_syscalls", 0, 0, nr_tasks);
        failures += shared->failures;
        only_row = 99; /* no fault row */
    }
    for (int file_test = 0; file_test <= 1; file_test++)
        for (int as_threads = 0; as_threads <= 1; as_threads++) {
            if (only_row >= 0 && only_row != file_test * 2 + as_threads)
                continue;
            row(file_test ? "page_fault2" : "page_fault1", file_test, as_threads, nr_tasks);
            failures += shared->failures;
        }
    if (failures) {
        printf("FAIL: pagefault_c: %d failures\n", failures);
        return 1;
    }
    printf("pagefault: done\n");
    return 0;
}
