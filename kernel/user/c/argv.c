/*
 * argv_c: the target of exectest's execve. Checks that argv and envp arrived as
 * exectest passed them: argv = { "argv_c", "alpha", "beta gamma", "" } (a word
 * with a space and an empty one stay whole) and envp = { "KEY=value with spaces",
 * "EMPTY=" } and nothing else.
 *
 * Exit 0 if every check passes, 1 (after a "FAIL:" line) otherwise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

int main(int argc, char **argv) {
    static const char *want_argv[] = { "argv_c", "alpha", "beta gamma", "" };
    static const char *want_env[] = { "KEY=value with spaces", "EMPTY=" };
    int failures = 0;
    if (argc != 4) {
        printf("FAIL: argc is %d, want 4\n", argc);
        return 1;
    }
    for (int i = 0; i < 4; i++) {
        if (strcmp(argv[i], want_argv[i]) != 0) {
            printf("FAIL: argv[%d] is \"%s\", want \"%s\"\n", i, argv[i], want_argv[i]);
            failures++;
        }
    }
    if (argv[4] != NULL) {
        printf("FAIL: argv is not NULL-terminated\n");
        failures++;
    }
    int n = 0;
    while (environ[n] != NULL) {
        n++;
    }
    if (n != 2 || strcmp(environ[0], want_env[0]) != 0 || strcmp(environ[1], want_env[1]) != 0) {
        printf("FAIL: envp has %d strings (want 2: \"%s\", \"%s\")\n", n, want_env[0], want_env[1]);
        failures++;
    }
    const char *value = getenv("KEY");
    if (value == NULL || strcmp(value, "value with spaces") != 0) {
        printf("FAIL: getenv(\"KEY\")\n");
        failures++;
    }
    if (failures == 0) {
        printf("argv_c: argv and envp intact (%d arguments, %d variables)\n", argc, n);
    }
    return failures == 0 ? 0 : 1;
}
