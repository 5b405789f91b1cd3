/*
 * insnprof: a QEMU TCG plugin that counts the guest instructions executed at each
 * guest address, for the instruction profile of the fault path (book chapter 5,
 * "Where a fault's instructions go"; docs/benchmarks.md).
 *
 * QEMU calls `trans` once per translated block; for every instruction in it we
 * register an inline "add 1 to this counter" that runs each time the instruction
 * does (no helper call, so the guest runs at near its usual speed). At exit the
 * counters are written as lines "ADDRESS COUNT". insnprof.py maps the addresses to
 * the kernel's symbols and sums them by function and by phase.
 *
 * Build (no QEMU headers needed: the few declarations of QEMU 7.2's plugin API,
 * version 1, are below):
 *     gcc -O2 -shared -fPIC -o /tmp/libinsnprof.so tools/insnprof/insnprof.c
 * Run (the runner passes the plugin to QEMU):
 *     cargo run --release -- --icount --cmdline "run=pagefault1 rounds=65" \
 *         --qemu-arg -plugin --qemu-arg /tmp/libinsnprof.so,out=/tmp/r65.out
 * One address may be run by several user programs (they share virtual addresses);
 * kernel addresses are unique, which is all the profile needs.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*tb_trans_cb)(qemu_plugin_id_t, struct qemu_plugin_tb *);
typedef void (*udata_cb)(qemu_plugin_id_t, void *);
extern void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t, tb_trans_cb);
extern size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *);
extern struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *, size_t);
extern uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *);
extern void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *, enum qemu_plugin_op, void *, uint64_t);
extern void qemu_plugin_register_atexit_cb(qemu_plugin_id_t, udata_cb, void *);

/* The plugin API version this file is written against (QEMU 7.2). */
__attribute__((visibility("default"))) int qemu_plugin_version = 1;

/* An open-addressing hash table: guest address -> execution count. */
#define SLOTS (1u << 22)
static uint64_t *addresses, *counts;
static const char *out_path = "insnprof.out";

static uint64_t *counter_for(uint64_t addr) {
    uint64_t h = (addr * 0x9e3779b97f4a7c15ull) >> 42;
    for (;;) {
        h &= SLOTS - 1;
        if (addresses[h] == addr) return &counts[h];
        if (addresses[h] == 0) {
            addresses[h] = addr;
            return &counts[h];
        }
        h++;
    }
}

static void trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
    (void)id;
    for (size_t i = 0; i < qemu_plugin_tb_n_insns(tb); i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint64_t *counter = counter_for(qemu_plugin_insn_vaddr(insn));
        qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, counter, 1);
    }
}

static void write_counts(qemu_plugin_id_t id, void *unused) {
    (void)id, (void)unused;
    FILE *f = fopen(out_path, "w");
    if (!f) return;
    for (uint64_t i = 0; i < SLOTS; i++)
        if (addresses[i] && counts[i])
            fprintf(f, "%llx %llu\n", (unsigned long long)addresses[i], (unsigned long long)counts[i]);
    fclose(f);
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id, const void *info, int argc, char **argv) {
    (void)info;
    addresses = calloc(SLOTS, sizeof *addresses);
    counts = calloc(SLOTS, sizeof *counts);
    if (!addresses || !counts) return -1;
    if (argc > 0 && strncmp(argv[0], "out=", 4) == 0) out_path = argv[0] + 4;
    qemu_plugin_register_vcpu_tb_trans_cb(id, trans);
    qemu_plugin_register_atexit_cb(id, write_counts, NULL);
    return 0;
}
