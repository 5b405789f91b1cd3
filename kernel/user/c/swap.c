/*
 * swap_c: more memory than the machine has. It asks sysinfo for the RAM size,
 * mallocs one and a half times that (or "mib=N" from the command line), writes a
 * different value into every 8-byte word, then reads every word back, twice: in
 * order and backwards. The kernel must page out to swap to make room and page
 * back in on every access to an evicted page.
 *
 * Exit 0 if every word reads back as written, 1 otherwise.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>

static uint64_t word(size_t i)
{
    return (uint64_t)i * 0x9e3779b97f4a7c15ull ^ 0x5bd1e995;
}

int main(int argc, char **argv)
{
    struct sysinfo info;
    if (sysinfo(&info) != 0) {
        printf("FAIL: swap_c: sysinfo failed\n");
        return 1;
    }
    uint64_t ram = (uint64_t)info.totalram * info.mem_unit;
    uint64_t swap = (uint64_t)info.totalswap * info.mem_unit;
    size_t len = ram / 2 * 3;
    for (int i = 1; i < argc; i++)
        if (strncmp(argv[i], "mib=", 4) == 0)
            len = (size_t)strtoul(argv[i] + 4, NULL, 10) << 20;
    printf("swap_c: RAM %llu MiB, swap %llu MiB: touching %zu MiB\n", (unsigned long long)(ram >> 20),
           (unsigned long long)(swap >> 20), len >> 20);
    fflush(stdout);
    uint64_t *words = malloc(len);
    if (words == NULL) {
        printf("FAIL: swap_c: malloc(%zu) failed\n", len);
        return 1;
    }
    size_t nr_words = len / sizeof(uint64_t);
    for (size_t i = 0; i < nr_words; i++)
        words[i] = word(i);
    for (size_t i = 0; i < nr_words; i++)
        if (words[i] != word(i)) {
            printf("FAIL: swap_c: word %zu is %#llx, not %#llx\n", i, (unsigned long long)words[i],
                   (unsigned long long)word(i));
            return 1;
        }
    for (size_t i = nr_words; i-- > 0;)
        if (words[i] != word(i)) {
            printf("FAIL: swap_c: word %zu is %#llx backwards, not %#llx\n", i, (unsigned long long)words[i],
                   (unsigned long long)word(i));
            return 1;
        }
    free(words);
    printf("swap_c: %zu words written and read back twice, all intact\n", nr_words);
    return 0;
}
