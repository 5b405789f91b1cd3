/*
 * hello_c: the first C program. printf through musl's stdio (writev), then a look
 * at what the kernel put on the initial stack: argc, argv, envp and the auxiliary
 * vector, each checked the way musl's startup code relies on it.
 *
 * Exit 0 if every check passes, 1 (after a "FAIL:" line) otherwise.
 */
#include <elf.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <time.h>
#include <unistd.h>

static int failures;

#define CHECK(cond, ...)                                                            \
    do {                                                                            \
        if (!(cond)) {                                                              \
            printf("FAIL: " __VA_ARGS__);                                           \
            printf("\n");                                                           \
            failures++;                                                             \
        }                                                                           \
    } while (0)

static const char *aux_name(unsigned long type)
{
    switch (type) {
    case AT_PHDR: return "AT_PHDR";
    case AT_PHENT: return "AT_PHENT";
    case AT_PHNUM: return "AT_PHNUM";
    case AT_PAGESZ: return "AT_PAGESZ";
    case AT_BASE: return "AT_BASE";
    case AT_FLAGS: return "AT_FLAGS";
    case AT_ENTRY: return "AT_ENTRY";
    case AT_UID: return "AT_UID";
    case AT_EUID: return "AT_EUID";
    case AT_GID: return "AT_GID";
    case AT_EGID: return "AT_EGID";
    case AT_PLATFORM: return "AT_PLATFORM";
    case AT_HWCAP: return "AT_HWCAP";
    case AT_CLKTCK: return "AT_CLKTCK";
    case AT_SECURE: return "AT_SECURE";
    case AT_RANDOM: return "AT_RANDOM";
    case AT_HWCAP2: return "AT_HWCAP2";
    case AT_EXECFN: return "AT_EXECFN";
    default: return "?";
    }
}

/* Checks the program headers the kernel points AT_PHDR at: they are ours. */
static void check_program_headers(void)
{
    const Elf64_Phdr *phdr = (const Elf64_Phdr *)getauxval(AT_PHDR);
    unsigned long phnum = getauxval(AT_PHNUM);
    unsigned long entry = getauxval(AT_ENTRY);
    int entry_in_code = 0;

    CHECK(phdr != NULL && phnum > 0, "AT_PHDR %p, AT_PHNUM %lu", (void *)phdr, phnum);
    CHECK(getauxval(AT_PHENT) == sizeof(Elf64_Phdr), "AT_PHENT %lu", getauxval(AT_PHENT));
    if (phdr == NULL)
        return;
    for (unsigned long i = 0; i < phnum; i++) {
        const Elf64_Phdr *p = &phdr[i];
        if (p->p_type == PT_LOAD && (p->p_flags & PF_X) && p->p_vaddr <= entry && entry < p->p_vaddr + p->p_memsz)
            entry_in_code = 1;
    }
    CHECK(entry_in_code, "AT_ENTRY %#lx is in no executable PT_LOAD of AT_PHDR", entry);
}

int main(int argc, char **argv, char **envp)
{
    printf("hello from C: musl's printf, through writev\n");

    /* The words the kernel pushed: argc, argv[], NULL, envp[], NULL, auxv pairs. */
    uintptr_t sp = (uintptr_t)argv - sizeof(long);
    printf("initial stack pointer %#lx (16-byte aligned: %s)\n", (unsigned long)sp, sp % 16 == 0 ? "yes" : "NO");
    CHECK(sp % 16 == 0, "rsp %#lx at _start is not 16-byte aligned", (unsigned long)sp);
    CHECK(*(long *)sp == argc, "argc on the stack %ld, main got %d", *(long *)sp, argc);
    printf("argc = %d\n", argc);
    for (int i = 0; i < argc; i++)
        printf("argv[%d] = \"%s\"\n", i, argv[i]);
    CHECK(argv[argc] == NULL, "argv[argc] is not NULL");
    const char *name = argc >= 1 ? strrchr(argv[0], '/') : NULL;
    name = name ? name + 1 : argv[0];
    CHECK(name && strcmp(name, "hello_c") == 0, "argv[0] does not name hello_c");
    char **env = envp;
    for (; *env != NULL; env++)
        printf("envp: \"%s\"\n", *env);
    CHECK(env - envp >= 1, "no environment");
    CHECK(getenv("HOME") && strcmp(getenv("HOME"), "/") == 0, "HOME is not \"/\"");

    unsigned long *aux = (unsigned long *)(env + 1);
    for (; aux[0] != AT_NULL; aux += 2)
        printf("auxv: %-11s %#lx\n", aux_name(aux[0]), aux[1]);
    CHECK(getauxval(AT_PAGESZ) == 4096, "AT_PAGESZ %lu", getauxval(AT_PAGESZ));
    CHECK(sysconf(_SC_PAGESIZE) == 4096, "sysconf(_SC_PAGESIZE) %ld", sysconf(_SC_PAGESIZE));
    check_program_headers();
    const unsigned char *random = (const unsigned char *)getauxval(AT_RANDOM);
    int nonzero = 0;
    for (int i = 0; random != NULL && i < 16; i++)
        nonzero |= random[i];
    CHECK(random != NULL && nonzero, "AT_RANDOM missing or all zeros");
    CHECK(random == NULL || (uintptr_t)random > sp, "AT_RANDOM %p is not above the stack pointer", (void *)random);
    const char *platform = (const char *)getauxval(AT_PLATFORM);
    CHECK(platform && strcmp(platform, "x86_64") == 0, "AT_PLATFORM");
    const char *execfn = (const char *)getauxval(AT_EXECFN);
    CHECK(execfn && strcmp(execfn, argv[0]) == 0, "AT_EXECFN is not argv[0]");

    /* errno lives in the thread structure, reached through the FS base. */
    CHECK(write(57, "x", 1) == -1 && errno == EBADF, "write to fd 57: errno %d, not EBADF", errno);
    CHECK(getpid() > 0, "getpid %d", (int)getpid());
    struct timespec t0, t1;
    CHECK(clock_gettime(CLOCK_MONOTONIC, &t0) == 0, "clock_gettime");
    CHECK(clock_gettime(CLOCK_MONOTONIC, &t1) == 0, "clock_gettime");
    CHECK(t1.tv_sec > t0.tv_sec || (t1.tv_sec == t0.tv_sec && t1.tv_nsec >= t0.tv_nsec), "the monotonic clock went back");

    if (failures) {
        printf("hello_c: %d check(s) failed\n", failures);
        return 1;
    }
    printf("hello_c: every check passed\n");
    return 0;
}
