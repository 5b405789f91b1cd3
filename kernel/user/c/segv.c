/*
 * segv_c: a C program with a bug on purpose. It writes through a null pointer
 * (or, with the argument "rodata", into a string literal, which lives in a
 * read-only segment). The kernel kills it with a message naming the address and
 * the mapping; the kernel and every other process run on.
 *
 * Never exits by itself: the test expects it killed.
 */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    int rodata = argc > 1 && strcmp(argv[argc - 1], "rodata") == 0;
    /* stderr is unbuffered: this line is out before the crash */
    fprintf(stderr, "segv_c: about to write %s\n", rodata ? "into a string literal" : "through a null pointer");
    if (rodata) {
        char *literal = (char *)"read-only";
        *(volatile char *)literal = 'R';
    } else {
        static volatile int *volatile null_pointer = 0;
        *null_pointer = 1;
    }
    fprintf(stderr, "segv_c: FAIL: the write did not fault\n");
    return 0;
}
