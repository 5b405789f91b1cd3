/*
 * malloc_c: musl's malloc at work. It builds a linked list of 20 000 nodes, each
 * with a payload of its own size (16 bytes to 1 KiB) filled with a pattern, plus a
 * few blocks of 1 to 4 MiB, checks every byte, frees every other node, grows the
 * rest with realloc, checks again, and frees everything; twice, so the second
 * round reuses what the first gave back. Small blocks come from the heap musl grows
 * with brk; the large ones are mmap'ed and munmap'ed one by one.
 *
 * Exit 0 if every byte read back is the byte written, 1 otherwise.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NR_NODES 20000
#define NR_BIG 4

struct node {
    struct node *next;
    size_t len;
    unsigned seed;
    unsigned char *payload;
};

static unsigned char pattern(unsigned seed, size_t i)
{
    return (unsigned char)(seed * 2654435761u + i * 40503u + (i >> 8));
}

static void fill(unsigned char *p, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        p[i] = pattern(seed, i);
}

static int intact(const unsigned char *p, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != pattern(seed, i))
            return 0;
    return 1;
}

static int fail(const char *what, unsigned seed)
{
    printf("FAIL: malloc_c: %s (node seed %u)\n", what, seed);
    return 1;
}

static int round_trip(int round)
{
    struct node *head = NULL;
    size_t nr_bytes = 0;
    for (unsigned i = 0; i < NR_NODES; i++) {
        struct node *n = malloc(sizeof *n);
        if (n == NULL)
            return fail("malloc of a node returned NULL", i);
        n->seed = i + (unsigned)round * NR_NODES;
        n->len = 16 + (n->seed * 7919u) % 1009;
        n->payload = malloc(n->len);
        if (n->payload == NULL)
            return fail("malloc of a payload returned NULL", n->seed);
        fill(n->payload, n->len, n->seed);
        n->next = head;
        head = n;
        nr_bytes += n->len;
    }
    unsigned char *big[NR_BIG];
    for (unsigned i = 0; i < NR_BIG; i++) {
        size_t len = (size_t)(1 + i) << 20;
        big[i] = malloc(len);
        if (big[i] == NULL)
            return fail("malloc of a big block returned NULL", i);
        fill(big[i], len, 1000000 + i);
        nr_bytes += len;
    }
    /* zeroed memory is zeroed, even when it reuses freed blocks */
    unsigned char *zeroed = calloc(4096, 16);
    if (zeroed == NULL)
        return fail("calloc returned NULL", 0);
    for (size_t i = 0; i < 4096 * 16; i++)
        if (zeroed[i] != 0)
            return fail("calloc memory is not zero", (unsigned)i);
    free(zeroed);

    size_t nr_nodes = 0;
    for (struct node *n = head; n != NULL; n = n->next, nr_nodes++)
        if (!intact(n->payload, n->len, n->seed))
            return fail("payload changed", n->seed);
    if (nr_nodes != NR_NODES)
        return fail("the list lost nodes", (unsigned)nr_nodes);

    /* free every other node; grow the others with realloc (contents must move along) */
    struct node **link = &head;
    for (unsigned i = 0; *link != NULL; i++) {
        struct node *n = *link;
        if (i % 2 == 0) {
            *link = n->next;
            free(n->payload);
            free(n);
            continue;
        }
        unsigned char *grown = realloc(n->payload, n->len * 3);
        if (grown == NULL)
            return fail("realloc returned NULL", n->seed);
        if (!intact(grown, n->len, n->seed))
            return fail("realloc lost the contents", n->seed);
        n->payload = grown;
        n->len *= 3;
        fill(n->payload, n->len, n->seed);
        link = &n->next;
    }
    for (struct node *n = head; n != NULL; n = n->next)
        if (!intact(n->payload, n->len, n->seed))
            return fail("payload changed after the frees", n->seed);
    for (unsigned i = 0; i < NR_BIG; i++) {
        if (!intact(big[i], (size_t)(1 + i) << 20, 1000000 + i))
            return fail("a big block changed", i);
        free(big[i]);
    }
    while (head != NULL) {
        struct node *next = head->next;
        free(head->payload);
        free(head);
        head = next;
    }
    printf("malloc_c: round %d: %d nodes and %d big blocks, %zu KiB, all intact and freed\n", round, NR_NODES,
           NR_BIG, nr_bytes >> 10);
    return 0;
}

int main(void)
{
    void *brk_start = sbrk(0);
    for (int round = 0; round < 2; round++)
        if (round_trip(round) != 0)
            return 1;
    printf("malloc_c: the heap grew by %ld KiB with brk\n", (long)((char *)sbrk(0) - (char *)brk_start) >> 10);
    return 0;
}
