/*
 * fork_c: fork and wait through musl. Four children each see the parent's memory
 * as it was at the fork (a global, a heap block, a thread-local variable), change
 * their own copies, and exit with their own code; a fifth child dies of a bad
 * access. The parent reaps each one with waitpid, checks how each ended
 * (WIFEXITED/WEXITSTATUS, WIFSIGNALED) and that its own memory did not change.
 *
 * Exit 0 if everything matches, 1 otherwise.
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NR_CHILDREN 4

static int global = 1234;
static __thread int thread_local = 77;

static int child(int i, char *heap)
{
    if (global != 1234 || thread_local != 77 || strcmp(heap, "parent's block") != 0) {
        printf("FAIL: fork_c: child %d does not see the parent's memory\n", i);
        return 100;
    }
    global = i;
    thread_local = i;
    snprintf(heap, 64, "child %d's block", i);
    for (int round = 0; round < 50; round++) {
        sched_yield();
        if (global != i || thread_local != i || strncmp(heap, "child", 5) != 0) {
            printf("FAIL: fork_c: child %d lost its own writes\n", i);
            return 101;
        }
    }
    return 10 + i;
}

int main(void)
{
    char *heap = malloc(64);
    strcpy(heap, "parent's block");
    printf("fork_c: parent pid %d forks %d children and a crashing one\n", getpid(), NR_CHILDREN);
    fflush(stdout); /* else each child would inherit, and print again, the buffered line */
    pid_t pids[NR_CHILDREN];
    for (int i = 0; i < NR_CHILDREN; i++) {
        pids[i] = fork();
        if (pids[i] < 0) {
            printf("FAIL: fork_c: fork failed\n");
            return 1;
        }
        if (pids[i] == 0)
            exit(child(i, heap));
    }
    pid_t crasher = fork();
    if (crasher == 0) {
        static volatile int *volatile nowhere = (volatile int *)8; /* no page there */
        *nowhere = 1; /* the kernel kills the child */
        exit(0);
    }
    int failures = 0;
    for (int i = NR_CHILDREN - 1; i >= 0; i--) {
        int status;
        pid_t got = waitpid(pids[i], &status, 0);
        int ok = got == pids[i] && WIFEXITED(status) && WEXITSTATUS(status) == 10 + i;
        printf("fork_c: child %d (pid %d) exited with %d%s\n", i, pids[i], WIFEXITED(status) ? WEXITSTATUS(status) : -1,
               ok ? "" : ": WRONG");
        failures += !ok;
    }
    int status;
    pid_t got = waitpid(-1, &status, 0);
    int ok = got == crasher && WIFSIGNALED(status);
    printf("fork_c: the crashing child (pid %d) was killed by signal %d%s\n", crasher,
           WIFSIGNALED(status) ? WTERMSIG(status) : -1, ok ? "" : ": WRONG");
    failures += !ok;
    if (waitpid(-1, &status, 0) != -1) {
        printf("FAIL: fork_c: waitpid found a child after all were reaped\n");
        failures++;
    }
    if (global != 1234 || thread_local != 77 || strcmp(heap, "parent's block") != 0) {
        printf("FAIL: fork_c: a child's write reached the parent\n");
        failures++;
    }
    if (failures == 0)
        printf("fork_c: every child ended as expected; the parent's memory is its own\n");
    return failures != 0;
}
