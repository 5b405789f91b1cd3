/*
 * execmt_c: execve from a process with several threads (issue #13). As Linux
 * (de_thread), the other threads end before the new program starts: the program
 * after the exec is the process's only thread, under the same pid, and its exit
 * status is what the parent reaps, whichever thread called execve.
 *
 *   execmt_c leader      two threads spin; main execs "execmt_c after PID"
 *   execmt_c thread      main waits in pthread_join and a thread spins; another
 *                        thread (not the leader) execs "execmt_c after PID"
 *   execmt_c after PID   the new program: one thread in /proc/self/status, the
 *                        pid PID; exit 0
 *
 * Exit 0 if the new program saw one thread and the same pid; 1 otherwise (the
 * old program's exit path after a failed execve exits 2).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile long spins;

static void *spinner(void *arg)
{
    (void)arg;
    for (;;)
        spins++;
    return NULL;
}

/* Execs this program as "after PID"; returns only if execve failed. */
static void exec_after(void)
{
    char pid[32];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    char *argv[] = {"execmt_c", "after", pid, NULL};
    char *envp[] = {NULL};
    fflush(stdout);
    execve("/bin/execmt_c", argv, envp);
    execve("/proc/self/exe", argv, envp); /* where /bin has no copy (Linux) */
    printf("FAIL: execmt_c: execve failed\n");
    exit(2);
}

static void *execer(void *arg)
{
    (void)arg;
    exec_after();
    return NULL;
}

/* Returns the Threads: count of /proc/self/status, or -1. */
static int nr_threads(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    int n = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "Threads:", 8) == 0)
            n = atoi(line + 8);
    if (f)
        fclose(f);
    return n;
}

static int after(const char *old_pid)
{
    struct timespec t = {0, 50 * 1000000};
    nanosleep(&t, NULL); /* a thread of the old program would still be counted */
    int n = nr_threads();
    if (n != 1 || getpid() != atoi(old_pid)) {
        printf("FAIL: execmt_c: after execve %d threads (1 expected), pid %d (%s expected)\n", n, (int)getpid(), old_pid);
        return 1;
    }
    printf("execmt_c: after execve: one thread, pid %d as before\n", (int)getpid());
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "leader";
    if (strcmp(mode, "after") == 0)
        return after(argc > 2 ? argv[2] : "0");
    pthread_t spin[2], exec_thread;
    int nr_spinners = strcmp(mode, "thread") == 0 ? 1 : 2;
    for (int i = 0; i < nr_spinners; i++)
        pthread_create(&spin[i], NULL, spinner, NULL);
    while (spins < 1000)
        ;
    printf("execmt_c: %d threads before execve from %s\n", nr_threads(), mode);
    if (strcmp(mode, "thread") == 0) {
        pthread_create(&exec_thread, NULL, execer, NULL);
        pthread_join(exec_thread, NULL); /* ended by the exec: never returns */
        printf("FAIL: execmt_c: the leader's join returned\n");
        return 1;
    }
    exec_after();
    return 1;
}
