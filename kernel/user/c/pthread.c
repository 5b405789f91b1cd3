/*
 * pthread_c: POSIX threads through musl (issue #13). musl's pthread_create calls
 * clone(CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|
 * CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID|CLONE_DETACHED) on a stack
 * it mmaps; pthread_join sleeps on futexes until the thread's exit clears its tid.
 *
 * Checks: NR_THREADS threads add to one counter under a mutex (no increment lost),
 * each sees the same pid and its own tid and its own thread-local variable, the
 * join returns each thread's value; a condition variable hands a value over;
 * the futex calls answer as Linux's (EAGAIN, ETIMEDOUT) and clone refuses flag
 * combinations Linux refuses (EINVAL).
 *
 * Exit 0 if every check passes, 1 otherwise.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define NR_THREADS 4
#define ROUNDS 20000
#define FUTEX_WAIT_PRIVATE 128
#define FUTEX_WAKE_PRIVATE 129

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long counter;
static __thread long mine = 5;
static pid_t tids[NR_THREADS];
static int failures;

static pthread_mutex_t handover_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t handover_cond = PTHREAD_COND_INITIALIZER;
static int handover_value;

static void fail(const char *what)
{
    printf("FAIL: pthread_c: %s\n", what);
    __atomic_add_fetch(&failures, 1, __ATOMIC_SEQ_CST);
}

static void *worker(void *arg)
{
    long i = (long)arg;
    tids[i] = (pid_t)syscall(SYS_gettid);
    if (getpid() == tids[i])
        fail("a thread's tid is the pid");
    mine = 100 + i;
    for (int r = 0; r < ROUNDS; r++) {
        pthread_mutex_lock(&lock);
        counter++;
        pthread_mutex_unlock(&lock);
        if (r % 1000 == 0)
            sched_yield();
    }
    if (mine != 100 + i)
        fail("a thread-local variable changed under another thread");
    return (void *)(i * 10);
}

static void *receiver(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&handover_lock);
    while (handover_value == 0)
        pthread_cond_wait(&handover_cond, &handover_lock);
    int v = handover_value;
    pthread_mutex_unlock(&handover_lock);
    return (void *)(long)v;
}

static long raw_futex(int *addr, long op, long val, const struct timespec *timeout)
{
    long r = syscall(SYS_futex, addr, op, val, timeout, 0, 0);
    return r < 0 ? -errno : r;
}

int main(void)
{
    pthread_t threads[NR_THREADS];
    for (long i = 0; i < NR_THREADS; i++)
        if (pthread_create(&threads[i], 0, worker, (void *)i) != 0)
            fail("pthread_create");
    for (long i = 0; i < NR_THREADS; i++) {
        void *ret;
        if (pthread_join(threads[i], &ret) != 0 || ret != (void *)(i * 10))
            fail("pthread_join returned the wrong value");
    }
    if (counter != (long)NR_THREADS * ROUNDS) {
        printf("FAIL: pthread_c: counter %ld, expected %ld\n", counter, (long)NR_THREADS * ROUNDS);
        failures++;
    }
    for (int i = 0; i < NR_THREADS; i++)
        for (int j = 0; j < i; j++)
            if (tids[i] == tids[j])
                fail("two threads with one tid");
    if (mine != 5)
        fail("the main thread's thread-local variable changed");

    pthread_t r;
    pthread_create(&r, 0, receiver, 0);
    pthread_mutex_lock(&handover_lock);
    handover_value = 42;
    pthread_cond_signal(&handover_cond);
    pthread_mutex_unlock(&handover_lock);
    void *got;
    pthread_join(r, &got);
    if (got != (void *)42L)
        fail("the condition variable lost the value");

    int word = 1;
    struct timespec short_wait = {0, 20 * 1000 * 1000};
    if (raw_futex(&word, FUTEX_WAIT_PRIVATE, 2, 0) != -EAGAIN)
        fail("FUTEX_WAIT on a changed word is not EAGAIN");
    if (raw_futex(&word, FUTEX_WAIT_PRIVATE, 1, &short_wait) != -ETIMEDOUT)
        fail("FUTEX_WAIT with a timeout is not ETIMEDOUT");
    if (raw_futex(&word, FUTEX_WAKE_PRIVATE, 1, 0) != 0)
        fail("FUTEX_WAKE with no waiter woke someone");
    if (raw_futex((int *)((char *)&word + 1), FUTEX_WAKE_PRIVATE, 1, 0) != -EINVAL)
        fail("a misaligned futex is not EINVAL");
    /* CLONE_THREAD needs CLONE_SIGHAND, which needs CLONE_VM (Linux's rules). */
    if (syscall(SYS_clone, 0x10000 | 0x100, 0, 0, 0, 0) != -1 || errno != EINVAL)
        fail("clone(CLONE_THREAD|CLONE_VM) is not EINVAL");
    if (syscall(SYS_clone, 0x800, 0, 0, 0, 0) != -1 || errno != EINVAL)
        fail("clone(CLONE_SIGHAND) is not EINVAL");

    if (failures == 0)
        printf("pthread_c: %d threads, counter %ld, all checks passed\n", NR_THREADS, counter);
    return failures == 0 ? 0 : 1;
}
