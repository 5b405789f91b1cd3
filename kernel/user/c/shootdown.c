/*
 * shootdown_c: TLB shootdown seen from user space (issue #13). Threads of one
 * process run on different CPUs; one changes the page table, the other must see
 * the change as soon as the call that made it returns.
 *
 *   shootdown_c munmap    a thread spins reading a page while main munmaps it:
 *                         after munmap returns, the reader's next read faults
 *                         (the process is killed); a read that still succeeds
 *                         used a stale TLB entry: exit 1
 *   shootdown_c mprotect  the same with mprotect(PROT_READ) and a writer
 *   shootdown_c cow       a sibling thread writes a page while main forks: the
 *                         child's copy must not change after the fork (exit 0)
 *   shootdown_c faults N  N threads fault disjoint pages of one mapping, write
 *                         a pattern, and main checks every page (exit 0)
 *   shootdown_c swap      a thread rewrites and checks a region while main pushes
 *                         it out to swap (MADV_PAGEOUT) again and again (exit 0)
 *
 * munmap and mprotect end killed by the fault; 2 means the reader never faulted.
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif

static volatile int *page;
static int changed;        /* set by main once the page-table change returned */
static long nr_accesses;   /* the other thread's progress */
static int stop;

static void sleep_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&t, 0);
}

static void wait_for_progress(long n)
{
    while (__atomic_load_n(&nr_accesses, __ATOMIC_SEQ_CST) < n)
        sched_yield();
}

static void *reader(void *arg)
{
    (void)arg;
    for (;;) {
        int was_changed = __atomic_load_n(&changed, __ATOMIC_SEQ_CST);
        int v = *page;
        if (was_changed) {
            printf("FAIL: shootdown_c: read %d through a stale TLB entry after munmap returned\n", v);
            exit(1);
        }
        __atomic_add_fetch(&nr_accesses, 1, __ATOMIC_SEQ_CST);
    }
    return 0;
}

static void *writer(void *arg)
{
    (void)arg;
    for (int i = 0;; i++) {
        int was_changed = __atomic_load_n(&changed, __ATOMIC_SEQ_CST);
        *page = i;
        if (was_changed) {
            printf("FAIL: shootdown_c: wrote through a stale TLB entry after mprotect returned\n");
            exit(1);
        }
        __atomic_add_fetch(&nr_accesses, 1, __ATOMIC_SEQ_CST);
    }
    return 0;
}

/* munmap or mprotect the page while the other thread uses it. */
static int change_under_thread(int is_munmap)
{
    page = mmap(0, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED)
        return 3;
    *page = 7;
    pthread_t t;
    pthread_create(&t, 0, is_munmap ? reader : writer, 0);
    wait_for_progress(100000);
    if (is_munmap)
        munmap((void *)page, PAGE);
    else
        mprotect((void *)page, PAGE, PROT_READ);
    __atomic_store_n(&changed, 1, __ATOMIC_SEQ_CST);
    sleep_ms(2000);
    printf("FAIL: shootdown_c: the other thread never faulted\n");
    return 2;
}

static void *counter_writer(void *arg)
{
    (void)arg;
    while (!__atomic_load_n(&stop, __ATOMIC_SEQ_CST)) {
        page[0]++;
        __atomic_add_fetch(&nr_accesses, 1, __ATOMIC_SEQ_CST);
    }
    return 0;
}

/* fork while a sibling thread writes: the child's snapshot must hold still. */
static int cow_under_thread(void)
{
    page = mmap(0, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    pthread_t t;
    pthread_create(&t, 0, counter_writer, 0);
    int failures = 0;
    for (int round = 0; round < 20; round++) {
        wait_for_progress(__atomic_load_n(&nr_accesses, __ATOMIC_SEQ_CST) + 10000);
        pid_t pid = fork();
        if (pid == 0) {
            int first = page[0];
            for (volatile long spin = 0; spin < 2000000; spin++)
                if (page[0] != first)
                    _exit(1);
            _exit(0);
        }
        int status;
        waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            printf("FAIL: shootdown_c: round %d: the child's copy changed after fork\n", round);
            failures++;
        }
    }
    int before = page[0];
    wait_for_progress(__atomic_load_n(&nr_accesses, __ATOMIC_SEQ_CST) + 1000);
    if (page[0] == before) {
        printf("FAIL: shootdown_c: the writer's own page stopped changing\n");
        failures++;
    }
    __atomic_store_n(&stop, 1, __ATOMIC_SEQ_CST);
    pthread_join(t, 0);
    return failures ? 1 : 0;
}

struct slice {
    unsigned char *base;
    long first, count, id;
};

static void *fault_slice(void *arg)
{
    struct slice *s = arg;
    for (long p = s->first; p < s->first + s->count; p++)
        memset(s->base + p * PAGE, (int)((p * 7 + s->id) & 0xff), PAGE);
    return 0;
}

/* N threads fault disjoint pages of one mapping; every byte is checked. */
static int disjoint_faults(int n)
{
    enum { PAGES = 4096 };
    unsigned char *base = mmap(0, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    pthread_t t[16];
    struct slice s[16];
    if (n < 1 || n > 16 || base == MAP_FAILED)
        return 3;
    for (int i = 0; i < n; i++) {
        s[i] = (struct slice){base, (long)i * (PAGES / n), PAGES / n, i};
        pthread_create(&t[i], 0, fault_slice, &s[i]);
    }
    for (int i = 0; i < n; i++)
        pthread_join(t[i], 0);
    int bad = 0;
    for (int i = 0; i < n; i++)
        for (long p = s[i].first; p < s[i].first + s[i].count; p++)
            for (long b = 0; b < PAGE; b += 512)
                if (base[p * PAGE + b] != (unsigned char)((p * 7 + i) & 0xff))
                    bad++;
    munmap(base, PAGES * PAGE);
    if (bad)
        printf("FAIL: shootdown_c: %d bytes wrong after %d threads faulted\n", bad, n);
    return bad ? 1 : 0;
}

enum { SWAP_PAGES = 256 };
static int swap_errors;

static void *rewrite_and_check(void *arg)
{
    unsigned *words = arg;
    for (unsigned gen = 1; !__atomic_load_n(&stop, __ATOMIC_SEQ_CST); gen++) {
        for (int p = 0; p < SWAP_PAGES; p++)
            words[p * (PAGE / 4)] = gen * 1000 + p;
        for (int p = 0; p < SWAP_PAGES; p++)
            if (words[p * (PAGE / 4)] != gen * 1000 + p)
                swap_errors++;
        __atomic_add_fetch(&nr_accesses, 1, __ATOMIC_SEQ_CST);
    }
    return 0;
}

/* Pages pushed to swap while another CPU uses them come back intact. */
static int swap_under_thread(void)
{
    unsigned *words = mmap(0, SWAP_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    pthread_t t;
    pthread_create(&t, 0, rewrite_and_check, words);
    for (int round = 0; round < 40; round++) {
        wait_for_progress(__atomic_load_n(&nr_accesses, __ATOMIC_SEQ_CST) + 2);
        madvise(words, SWAP_PAGES * PAGE, MADV_PAGEOUT);
    }
    __atomic_store_n(&stop, 1, __ATOMIC_SEQ_CST);
    pthread_join(t, 0);
    if (swap_errors)
        printf("FAIL: shootdown_c: %d words lost while the region was swapped out under a thread\n", swap_errors);
    return swap_errors ? 1 : 0;
}

/* The mode is the first argument that names one (the kernel's `run=` passes its
 * whole command line). */
int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *mode = argv[i];
        if (!strcmp(mode, "munmap"))
            return change_under_thread(1);
        if (!strcmp(mode, "mprotect"))
            return change_under_thread(0);
        if (!strcmp(mode, "cow"))
            return cow_under_thread();
        if (!strcmp(mode, "faults"))
            return disjoint_faults(i + 1 < argc ? atoi(argv[i + 1]) : 2);
        if (!strcmp(mode, "swap"))
            return swap_under_thread();
    }
    printf("usage: shootdown_c munmap|mprotect|cow|faults N|swap\n");
    return 3;
}
