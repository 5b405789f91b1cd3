/*
 * clonevm_c: a child made by clone(CLONE_VM) without CLONE_THREAD (what vfork and
 * posix_spawn make before their exec) is a process of its own that shares its
 * parent's memory: its writes are the parent's, and when it exits without an exec
 * the parent's memory stays whole. (The exit of a process's last task unmaps its
 * address space; here the space has another task, the parent, and must stay.)
 *
 * Exit 0 if so, 1 otherwise.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define HEAP_BYTES (16 * 4096)

static int shared = 1;
static char child_stack[64 * 1024] __attribute__((aligned(16)));

static int child(void *arg)
{
    char *heap = arg;
    shared = 2;
    strcpy(heap, "written by the child");
    _exit(7);
}

int main(void)
{
    char *heap = malloc(HEAP_BYTES);
    if (!heap) {
        printf("FAIL: clonevm_c: malloc\n");
        return 1;
    }
    memset(heap, 'p', HEAP_BYTES);
    int pid = clone(child, child_stack + sizeof child_stack, CLONE_VM | SIGCHLD, heap);
    if (pid < 0) {
        printf("FAIL: clonevm_c: clone failed\n");
        return 1;
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 7) {
        printf("FAIL: clonevm_c: the child did not exit with 7 (status %#x)\n", status);
        return 1;
    }
    if (shared != 2 || strcmp(heap, "written by the child") != 0) {
        printf("FAIL: clonevm_c: the child's writes are not the parent's\n");
        return 1;
    }
    for (int i = 4096; i < HEAP_BYTES; i++) {
        if (heap[i] != 'p') {
            printf("FAIL: clonevm_c: the parent's heap changed at byte %d\n", i);
            return 1;
        }
    }
    heap[HEAP_BYTES - 1] = 'q'; /* and it can still write its memory */
    printf("clonevm_c: the CLONE_VM child's writes are the parent's; its exit left the parent's memory whole\n");
    return 0;
}
