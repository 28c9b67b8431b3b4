/*
 * ttl-bench: times libttl's TT-FC and TT-conv layers against the dense layers they replace, on the paper's
 * shapes, after checking every path against the CPU reference.
 *
 *   ttl-bench [--device cpu|cuda|auto] [--suite quick|paper] [--case NAME]... [--batch N] [--repeats N]
 *             [--algo NAME] [--json FILE] [--md FILE] [--commit STR] [--list]
 *
 * --case takes a name or a prefix and may repeat (then the suite does not filter); --batch replaces the
 * suite's batches; --algo keeps one libttl row name (e.g. spatial_first_3xtf32; the dense baseline always runs,
 * a profiler's first launch of a kernel is then that row's); auto picks cuda when this build has it and a device is
 * usable. The commit recorded in the header comes from --commit, else the TTL_COMMIT environment variable. Exit
 * status: 0, 1 on a usage or runtime error, 2 when a correctness check failed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cases.h"
#include "report.h"
#include "runners.h"
#include "timer.h"

#define DEFAULT_MAX_REPEATS 200
#define PAPER_BUDGET_S 0.5
#define QUICK_BUDGET_S 0.1

static void usage(FILE *f) {
    fprintf(f, "usage: ttl-bench [--device cpu|cuda|auto] [--suite quick|paper] [--case NAME]... [--batch N]\n"
               "                 [--repeats N] [--algo NAME] [--json FILE] [--md FILE] [--commit STR] [--list]\n");
}

static void list_cases(void) {
    int count;
    const bench_case_t *cases = bench_cases(&count);
    printf("%-22s %-5s %-6s %-34s %s\n", "case", "op", "suites", "shape (out x in, ranks)", "note");
    for (int i = 0; i < count; ++i) {
        char shape[96];
        bench_case_shape_text(shape, (int)sizeof shape, &cases[i]);
        printf("%-22s %-5s %-6s %-34s %s\n", cases[i].name, cases[i].op == BENCH_OP_FC ? "fc" : "conv",
               (cases[i].suites & BENCH_SUITE_QUICK) ? "q,p" : "p", shape, cases[i].note);
    }
}

// The value after an option, or exit with a usage message.
static const char *option_value(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        fprintf(stderr, "ttl-bench: %s needs a value\n", argv[*i]);
        usage(stderr);
        exit(1);
    }
    return argv[++*i];
}

static long long positive_value(const char *text, const char *option) {
    char *end;
    const long long v = strtoll(text, &end, 10);
    if (*end != '\0' || v < 1) {
        fprintf(stderr, "ttl-bench: %s wants a positive integer, got '%s'\n", option, text);
        exit(1);
    }
    return v;
}

int main(int argc, char **argv) {
    bench_options_t opt;
    memset(&opt, 0, sizeof opt);
    opt.suite_name = "paper";
    opt.max_repeats = DEFAULT_MAX_REPEATS;
    const char *device = "auto", *json_path = NULL, *md_path = NULL, *commit = getenv("TTL_COMMIT");
    for (int i = 1; i < argc; ++i) {
        const char *a = argv[i];
        if (strcmp(a, "--device") == 0)
            device = option_value(argc, argv, &i);
        else if (strcmp(a, "--suite") == 0)
            opt.suite_name = option_value(argc, argv, &i);
        else if (strcmp(a, "--case") == 0) {
            if (opt.num_patterns == BENCH_MAX_PATTERNS) {
                fprintf(stderr, "ttl-bench: too many --case options\n");
                return 1;
            }
            opt.patterns[opt.num_patterns++] = option_value(argc, argv, &i);
        } else if (strcmp(a, "--batch") == 0)
            opt.batch = positive_value(option_value(argc, argv, &i), a);
        else if (strcmp(a, "--repeats") == 0)
            opt.max_repeats = (int)positive_value(option_value(argc, argv, &i), a);
        else if (strcmp(a, "--algo") == 0)
            opt.algo = option_value(argc, argv, &i);
        else if (strcmp(a, "--json") == 0)
            json_path = option_value(argc, argv, &i);
        else if (strcmp(a, "--md") == 0)
            md_path = option_value(argc, argv, &i);
        else if (strcmp(a, "--commit") == 0)
            commit = option_value(argc, argv, &i);
        else if (strcmp(a, "--list") == 0) {
            list_cases();
            return 0;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "ttl-bench: unknown option '%s'\n", a);
            usage(stderr);
            return 1;
        }
    }
    opt.suite_flag = bench_suite_flag(opt.suite_name);
    if (!opt.suite_flag) {
        fprintf(stderr, "ttl-bench: unknown suite '%s' (quick, paper)\n", opt.suite_name);
        return 1;
    }
    opt.budget_s = opt.suite_flag == BENCH_SUITE_QUICK ? QUICK_BUDGET_S : PAPER_BUDGET_S;
    if (opt.max_repeats < 3) opt.max_repeats = 3; // a median needs a few samples

    // Resolve the device.
    int use_gpu = 0;
    if (strcmp(device, "cuda") == 0) {
#ifdef TTL_WITH_CUDA
        if (!bench_gpu_available()) {
            fprintf(stderr, "ttl-bench: no usable CUDA device\n");
            return 1;
        }
        use_gpu = 1;
#else
        fprintf(stderr, "ttl-bench: this build has no CUDA support\n");
        return 1;
#endif
    } else if (strcmp(device, "auto") == 0) {
#ifdef TTL_WITH_CUDA
        use_gpu = bench_gpu_available();
#endif
    } else if (strcmp(device, "cpu") != 0) {
        fprintf(stderr, "ttl-bench: unknown device '%s' (cpu, cuda, auto)\n", device);
        return 1;
    }

    int algo_known = opt.algo == NULL;
#ifdef TTL_WITH_CUDA
    if (use_gpu && !algo_known) algo_known = bench_gpu_algo_known(opt.algo);
#endif
    if (!use_gpu && !algo_known) algo_known = bench_cpu_algo_known(opt.algo);
    if (!algo_known) {
        fprintf(stderr, "ttl-bench: no %s row is named '%s'\n", use_gpu ? "cuda" : "cpu", opt.algo);
        return 1;
    }

    int selected = 0, count;
    const bench_case_t *cases = bench_cases(&count);
    for (int i = 0; i < count; ++i)
        selected += bench_case_selected(&cases[i], opt.suite_flag, opt.patterns, opt.num_patterns);
    if (!selected) {
        fprintf(stderr, "ttl-bench: no case matches (see --list)\n");
        return 1;
    }

    bench_report_t *report = bench_report_open(use_gpu ? "cuda" : "cpu", opt.suite_name,
                                               commit ? commit : "unknown", json_path, md_path);
    if (!report) {
        fprintf(stderr, "ttl-bench: out of memory\n");
        return 1;
    }
    const double start = bench_now();
    int failures = 0;
#ifdef TTL_WITH_CUDA
    if (use_gpu)
        failures = bench_gpu_run(&opt, report);
    else
#endif
        failures = bench_cpu_run(&opt, report);
    const double wall_s = bench_now() - start;
    bench_report_set_number(report, "wall_s", wall_s);
    printf("\n# suite ran in %.1f s\n", wall_s);
    const int write_failed = bench_report_close(report);
    if (failures) fprintf(stderr, "ttl-bench: %d row(s) failed their correctness check\n", failures);
    return write_failed ? 1 : failures ? 2 : 0;
}
