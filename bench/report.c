/*
 * Table, JSON and Markdown output of ttl-bench. Columns: the CPU table shows time, the dense OpenBLAS time of
 * the same row, speed-up, GFLOP/s (2 macs / time, macs of the algorithm actually run), parameters,
 * compression and the error against the reference; the GPU table adds the TF32 dense time, GB/s, the roofline
 * time and the issue-4 targets.
 */
#define _POSIX_C_SOURCE 200809L
#include "report.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ttl/ttl.h"

struct bench_report {
    int gpu;
    cJSON *root, *header, *rows;
    char *json_path;
    FILE *md;
    int targets_met, targets_missed;
    const char *last_case; /* the JSON is rewritten whenever a case is complete */
};

// ---- rows -------------------------------------------------------------------------------------------------------

void bench_row_init(bench_row_t *row) {
    memset(row, 0, sizeof *row);
    row->supported = 1;
    row->ms = row->dense_ms = row->tf32_ms = row->speedup = NAN;
    row->gflops = row->gbs = row->roofline_ms = row->model_ms = NAN;
    row->compression = row->rel_err = row->rel_err_dense = NAN;
}

void bench_row_target(bench_row_t *row, const char *name, double required, double measured, int higher_is_better) {
    if (row->num_targets >= BENCH_MAX_TARGETS) return;
    bench_target_t *t = &row->targets[row->num_targets++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->required = required;
    t->measured = measured;
    t->higher_is_better = higher_is_better;
    t->met = higher_is_better ? measured >= required : measured <= required;
}

// How far a missed target is from its bound, as a factor >= 1.
static double miss_factor(const bench_target_t *t) {
    return t->higher_is_better ? t->required / t->measured : t->measured / t->required;
}

// ---- machine facts ----------------------------------------------------------------------------------------------

static void cpu_model(char *buf, size_t size) {
    snprintf(buf, size, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0) continue;
        const char *colon = strchr(line, ':');
        if (!colon) break;
        snprintf(buf, size, "%s", colon + 2);
        buf[strcspn(buf, "\n")] = '\0';
        break;
    }
    fclose(f);
}

static void utc_date(char *buf, size_t size) {
    const time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

// ---- open -------------------------------------------------------------------------------------------------------

bench_report_t *bench_report_open(const char *device, const char *suite, const char *commit, const char *json_path,
                                  const char *md_path) {
    bench_report_t *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->gpu = strcmp(device, "cpu") != 0;
    r->root = cJSON_CreateObject();
    r->header = cJSON_AddObjectToObject(r->root, "header");
    r->rows = cJSON_AddArrayToObject(r->root, "rows");
    if (json_path) r->json_path = strdup(json_path);
    if (md_path && !(r->md = fopen(md_path, "w"))) fprintf(stderr, "ttl-bench: cannot write %s\n", md_path);

    char date[32], cpu[256];
    utc_date(date, sizeof date);
    cpu_model(cpu, sizeof cpu);
    bench_report_set_string(r, "date", date);
    bench_report_set_string(r, "device", device);
    bench_report_set_string(r, "suite", suite);
    bench_report_set_string(r, "commit", commit);
    bench_report_set_string(r, "library_version", ttl_version());
    bench_report_set_string(r, "cpu", cpu);
    bench_report_set_number(r, "cpu_cores", (double)sysconf(_SC_NPROCESSORS_ONLN));
    return r;
}

void bench_report_set_string(bench_report_t *r, const char *key, const char *value) {
    cJSON_DeleteItemFromObject(r->header, key);
    cJSON_AddStringToObject(r->header, key, value ? value : "");
}

void bench_report_set_number(bench_report_t *r, const char *key, double value) {
    cJSON_DeleteItemFromObject(r->header, key);
    cJSON_AddNumberToObject(r->header, key, value);
}

// ---- table ------------------------------------------------------------------------------------------------------

static const char *const k_cpu_columns[] = {"case",     "shape",   "batch",   "algo",   "ms",
                                            "dense_ms", "x_dense", "GFLOP/s", "params", "compress",
                                            "rel_err",  "check",   "targets"};
static const char *const k_gpu_columns[] = {"case",    "batch",   "algo",      "ms",      "dense_ms",
                                            "tf32_ms", "x_dense", "GFLOP/s",   "GB/s",    "roof_ms",
                                            "x_roof",  "ws_MB",   "rel_dense", "rel_ref", "targets"};
#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

void bench_report_begin_table(bench_report_t *r) {
    printf("# ttl-bench");
    for (cJSON *item = r->header->child; item; item = item->next) {
        if (cJSON_IsString(item))
            printf("  %s=%s", item->string, item->valuestring);
        else
            printf("  %s=%g", item->string, item->valuedouble);
    }
    printf("\n");
    if (r->gpu)
        printf("%-20s %5s %-22s %9s %9s %9s %8s %8s %7s %9s %6s %7s %9s %9s %s\n", "case", "batch", "algo", "ms",
               "dense_ms", "tf32_ms", "x_dense", "GFLOP/s", "GB/s", "roof_ms", "x_roof", "ws_MB", "rel_dense",
               "rel_ref", "targets");
    else
        printf("%-20s %-27s %5s %-24s %9s %9s %8s %8s %8s %9s %9s %-14s %s\n", "case", "shape", "batch", "algo",
               "ms", "dense_ms", "x_dense", "GFLOP/s", "params", "compress", "rel_err", "check", "targets");
    fflush(stdout);

    if (!r->md) return;
    fprintf(r->md, "# ttl-bench results\n\n");
    for (cJSON *item = r->header->child; item; item = item->next) {
        if (cJSON_IsString(item))
            fprintf(r->md, "- %s: %s\n", item->string, item->valuestring);
        else
            fprintf(r->md, "- %s: %g\n", item->string, item->valuedouble);
    }
    fprintf(r->md, "\n|");
    const char *const *cols = r->gpu ? k_gpu_columns : k_cpu_columns;
    const int n = r->gpu ? COUNT(k_gpu_columns) : COUNT(k_cpu_columns);
    for (int i = 0; i < n; ++i) fprintf(r->md, " %s |", cols[i]);
    fprintf(r->md, "\n|");
    for (int i = 0; i < n; ++i) fprintf(r->md, "---|");
    fprintf(r->md, "\n");
}

// A number or "-" when not measured, in a fixed format.
static const char *fmt_num(char *buf, size_t size, const char *format, double v) {
    if (isnan(v))
        snprintf(buf, size, "-");
    else
        snprintf(buf, size, format, v);
    return buf;
}

static void targets_text(char *buf, size_t size, const bench_row_t *row) {
    size_t pos = 0;
    buf[0] = '\0';
    for (int i = 0; i < row->num_targets && pos < size; ++i) {
        const bench_target_t *t = &row->targets[i];
        int n;
        if (t->met)
            n = snprintf(buf + pos, size - pos, "%s%s:ok", i ? " " : "", t->name);
        else
            n = snprintf(buf + pos, size - pos, "%s%s:MISS(%.2fx)", i ? " " : "", t->name, miss_factor(t));
        if (n < 0) break;
        pos += (size_t)n;
    }
}

static void print_row(FILE *f, const bench_report_t *r, const bench_row_t *row, int markdown) {
    char ms[24], dense[24], tf32[24], x[24], gf[24], gbs[24], roof[24], xroof[24], rel[24], reld[24], comp[24];
    char ws[24], tgt[512], algo[96];
    if (row->chosen[0])
        snprintf(algo, sizeof algo, "%s(%s)", row->algo, row->chosen);
    else
        snprintf(algo, sizeof algo, "%s", row->algo);
    /* a failed plan, run or check reads FAIL (the reason is the JSON's "check"); a refused plan reads n/a */
    const int failed = strncmp(row->check, "FAIL", 4) == 0;
    if (!row->supported) {
        snprintf(ms, sizeof ms, "%s", failed ? "FAIL" : "n/a");
    } else {
        fmt_num(ms, sizeof ms, "%.4f", row->ms);
    }
    fmt_num(dense, sizeof dense, "%.4f", row->dense_ms);
    fmt_num(tf32, sizeof tf32, "%.4f", row->tf32_ms);
    fmt_num(x, sizeof x, "%.2f", row->speedup);
    fmt_num(gf, sizeof gf, "%.1f", row->gflops);
    fmt_num(gbs, sizeof gbs, "%.1f", row->gbs);
    fmt_num(roof, sizeof roof, "%.4f", row->roofline_ms);
    fmt_num(xroof, sizeof xroof, "%.2f", row->supported ? row->ms / row->roofline_ms : NAN);
    fmt_num(rel, sizeof rel, "%.1e", row->rel_err);
    if (failed && row->supported && r->gpu) snprintf(rel, sizeof rel, "FAIL:%.0e", row->rel_err);
    fmt_num(reld, sizeof reld, "%.1e", row->rel_err_dense);
    fmt_num(comp, sizeof comp, "%.1f", row->compression);
    fmt_num(ws, sizeof ws, "%.2f", row->supported ? (double)row->workspace_bytes / 1048576.0 : NAN);
    targets_text(tgt, sizeof tgt, row);
    if (markdown) {
        if (r->gpu)
            fprintf(f, "| %s | %lld | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
                    row->case_name, (long long)row->batch, algo, ms, dense, tf32, x, gf, gbs, roof, xroof, ws, reld,
                    rel, tgt);
        else
            fprintf(f, "| %s | %s | %lld | %s | %s | %s | %s | %s | %lld | %s | %s | %s | %s |\n", row->case_name,
                    row->shape, (long long)row->batch, algo, ms, dense, x, gf, (long long)row->params, comp, rel,
                    row->check, tgt);
    } else {
        if (r->gpu)
            fprintf(f, "%-20s %5lld %-22s %9s %9s %9s %8s %8s %7s %9s %6s %7s %9s %9s %s\n", row->case_name,
                    (long long)row->batch, algo, ms, dense, tf32, x, gf, gbs, roof, xroof, ws, reld, rel, tgt);
        else
            fprintf(f, "%-20s %-27s %5lld %-24s %9s %9s %8s %8s %8lld %9s %9s %-14s %s\n", row->case_name,
                    row->shape, (long long)row->batch, algo, ms, dense, x, gf, (long long)row->params, comp, rel,
                    row->check, tgt);
    }
}

// ---- JSON -------------------------------------------------------------------------------------------------------

static void add_number_or_null(cJSON *obj, const char *key, double v) {
    if (isfinite(v))
        cJSON_AddNumberToObject(obj, key, v);
    else
        cJSON_AddNullToObject(obj, key);
}

static cJSON *row_json(const bench_report_t *r, const bench_row_t *row) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "case", row->case_name);
    cJSON_AddStringToObject(o, "op", row->op);
    cJSON_AddStringToObject(o, "shape", row->shape);
    cJSON_AddNumberToObject(o, "batch", (double)row->batch);
    cJSON_AddStringToObject(o, "algo", row->algo);
    cJSON_AddStringToObject(o, "chosen", row->chosen);
    if (row->reason != NULL) cJSON_AddStringToObject(o, "reason", row->reason);
    cJSON_AddBoolToObject(o, "supported", row->supported);
    cJSON_AddStringToObject(o, "device", r->gpu ? "cuda" : "cpu");
    add_number_or_null(o, "ms", row->supported ? row->ms : NAN);
    add_number_or_null(o, "dense_ms", row->dense_ms);
    if (r->gpu) add_number_or_null(o, "tf32_ms", row->tf32_ms);
    add_number_or_null(o, "speedup_vs_dense", row->supported ? row->speedup : NAN);
    add_number_or_null(o, "gflops", row->gflops);
    if (r->gpu) {
        add_number_or_null(o, "gbs", row->gbs);
        add_number_or_null(o, "roofline_ms", row->roofline_ms);
        add_number_or_null(o, "model_ms", row->model_ms);
    }
    add_number_or_null(o, "rel_err", row->rel_err);
    if (r->gpu) add_number_or_null(o, "rel_err_dense", row->rel_err_dense);
    cJSON_AddStringToObject(o, "check", row->check);
    cJSON_AddNumberToObject(o, "params", (double)row->params);
    add_number_or_null(o, "compression", row->compression);
    cJSON_AddNumberToObject(o, "macs", (double)row->macs);
    cJSON_AddNumberToObject(o, "repeats", row->repeats);
    cJSON_AddNumberToObject(o, "weight_bytes", (double)row->weight_bytes);
    cJSON_AddNumberToObject(o, "workspace_bytes", (double)row->workspace_bytes);
    cJSON_AddNumberToObject(o, "persistent_bytes", (double)row->persistent_bytes);
    if (row->num_targets) {
        cJSON *targets = cJSON_AddArrayToObject(o, "targets");
        for (int i = 0; i < row->num_targets; ++i) {
            const bench_target_t *t = &row->targets[i];
            cJSON *tj = cJSON_CreateObject();
            cJSON_AddStringToObject(tj, "name", t->name);
            add_number_or_null(tj, "required", t->required);
            add_number_or_null(tj, "measured", t->measured);
            cJSON_AddBoolToObject(tj, "met", t->met);
            if (!t->met) add_number_or_null(tj, "missed_by_factor", miss_factor(t));
            cJSON_AddItemToArray(targets, tj);
        }
    }
    return o;
}

/* Writes the JSON as it stands to json_path (through a temporary file and a rename, so a reader never sees half a
 * file); 0 on success. */
static int write_json(const bench_report_t *r) {
    if (!r->json_path) return 0;
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", r->json_path) >= (int)sizeof tmp) return 1;
    char *text = cJSON_Print(r->root);
    FILE *f = fopen(tmp, "w");
    int rc = !f || !text || fputs(text, f) < 0;
    if (f && fclose(f) != 0) rc = 1;
    if (!rc && rename(tmp, r->json_path) != 0) rc = 1;
    if (rc) remove(tmp);
    cJSON_free(text);
    return rc;
}

void bench_report_row(bench_report_t *r, const bench_row_t *row) {
    /* a case is complete when the next one starts: save what is measured, in case the run is cut short */
    if (r->last_case && strcmp(r->last_case, row->case_name) != 0) (void)write_json(r);
    r->last_case = row->case_name;
    print_row(stdout, r, row, 0);
    fflush(stdout);
    if (r->md) print_row(r->md, r, row, 1);
    cJSON_AddItemToArray(r->rows, row_json(r, row));
    for (int i = 0; i < row->num_targets; ++i) {
        if (row->targets[i].met)
            ++r->targets_met;
        else
            ++r->targets_missed;
    }
}

// ---- close ------------------------------------------------------------------------------------------------------

// Prints every target of every row once more, the misses with their factor.
static void print_targets(FILE *f, const bench_report_t *r, const char *prefix) {
    if (r->targets_met + r->targets_missed == 0) return;
    fprintf(f, "\n%stargets: %d met, %d missed\n", prefix, r->targets_met, r->targets_missed);
    const cJSON *row;
    cJSON_ArrayForEach(row, r->rows) {
        const cJSON *t;
        cJSON_ArrayForEach(t, cJSON_GetObjectItem(row, "targets")) {
            const int met = cJSON_IsTrue(cJSON_GetObjectItem(t, "met"));
            fprintf(f, "%s%-20s b=%-5g %-24s %-28s required %-8.3g measured %-8.3g %s", prefix,
                    cJSON_GetObjectItem(row, "case")->valuestring, cJSON_GetObjectItem(row, "batch")->valuedouble,
                    cJSON_GetObjectItem(row, "algo")->valuestring, cJSON_GetObjectItem(t, "name")->valuestring,
                    cJSON_GetObjectItem(t, "required")->valuedouble,
                    cJSON_GetObjectItem(t, "measured")->valuedouble, met ? "met" : "MISSED");
            if (!met) fprintf(f, " by %.2fx", cJSON_GetObjectItem(t, "missed_by_factor")->valuedouble);
            fprintf(f, "\n");
        }
    }
}

int bench_report_close(bench_report_t *r) {
    int rc = 0;
    print_targets(stdout, r, "");
    if (r->md) {
        print_targets(r->md, r, "- ");
        if (fclose(r->md) != 0) rc = 1;
    }
    if (r->json_path) {
        if (write_json(r)) {
            rc = 1;
            fprintf(stderr, "ttl-bench: cannot write %s\n", r->json_path);
        }
        free(r->json_path);
    }
    cJSON_Delete(r->root);
    free(r);
    return rc;
}
