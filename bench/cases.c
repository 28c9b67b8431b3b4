/*
 * The suite: each record is one layer shape. FC shapes and ranks are the papers' (Novikov et al. 2015 VGG-16
 * FC6; the TensorNet CIFAR-10 conv-fc net), conv shapes are the CIFAR-10 TT-conv layers of Garipov et al.
 * (ranks 16 of the TT-conv-fc nets, and the TT-conv net's ranks), the paper's naive 4-D TT of the kernel
 * (d = 2, channel modes (1, C) and (S, 1), spatial rank kh kw = 9), and VGG-size 3x3 convs where TT-conv is
 * cheaper than dense. All convs are 3x3, stride 1, padding 1 (SAME), NCHW.
 */
#include "cases.h"

#include <stdio.h>
#include <string.h>

// ---- batches ---------------------------------------------------------------------------------------------------

// The CPU batches keep the whole paper suite within a few minutes on two cores; the GPU ones are issue 4's.
#define FC_CPU_BATCHES                                                                                             \
    { 1, 100 }
#define FC_GPU_BATCHES                                                                                             \
    { 1, 32, 128, 1024 }
#define CONV_CPU_BATCHES                                                                                           \
    { 1, 8 }
#define CONV_GPU_BATCHES                                                                                           \
    { 1, 32, 128 }

#define BOTH (BENCH_SUITE_QUICK | BENCH_SUITE_PAPER)
#define PAPER BENCH_SUITE_PAPER

// ---- case constructors ------------------------------------------------------------------------------------------

#define FC_CASE(NAME, SUITES, D, OUT, IN, RANKS, NOTE)                                                             \
    {                                                                                                              \
        .name = NAME, .op = BENCH_OP_FC, .suites = SUITES, .num_cores = D, .out_modes = OUT, .in_modes = IN,       \
        .ranks = RANKS, .cpu_batches = FC_CPU_BATCHES, .gpu_batches = FC_GPU_BATCHES, .note = NOTE                 \
    }

#define CONV_CASE(NAME, SUITES, D, OUT, IN, RANKS, HW, NOTE)                                                       \
    {                                                                                                              \
        .name = NAME, .op = BENCH_OP_CONV, .suites = SUITES, .num_cores = D, .out_modes = OUT, .in_modes = IN,     \
        .ranks = RANKS, .kernel = 3, .stride = 1, .pad = 1, .height = HW, .width = HW,                             \
        .cpu_batches = CONV_CPU_BATCHES, .gpu_batches = CONV_GPU_BATCHES, .note = NOTE                             \
    }

#define L(...)                                                                                                     \
    { __VA_ARGS__ }

#define VGG_FC6(NAME, R, NOTE)                                                                                     \
    FC_CASE(NAME, PAPER, 6, L(4, 4, 4, 4, 4, 4), L(2, 7, 8, 8, 7, 4), L(1, R, R, R, R, R, 1), NOTE)

// CIFAR-10 channel modes: 64 = (4,4,4), 128 = (4,8,4).
#define M64 L(4, 4, 4)
#define M128 L(4, 8, 4)
#define M512 L(8, 8, 8)

static const bench_case_t k_cases[] = {
    // TT-FC
    VGG_FC6("vgg_fc6_tt1", 1, "VGG-16 FC6 25088->4096, Novikov 2015"),
    VGG_FC6("vgg_fc6_tt2", 2, "VGG-16 FC6 25088->4096, Novikov 2015"),
    VGG_FC6("vgg_fc6_tt4", 4, "VGG-16 FC6 25088->4096, Novikov 2015 (issue 2/4 targets)"),
    VGG_FC6("vgg_fc6_tt8", 8, "VGG-16 FC6 25088->4096"),
    FC_CASE("cifar_fc1_tt40", PAPER, 4, L(4, 6, 8, 8), L(8, 8, 8, 16), L(1, 40, 40, 40, 1),
            "CIFAR-10 conv-TT-fc net 8192->1536"),
    FC_CASE("cifar_fc2_tt30", BOTH, 4, L(4, 4, 4, 8), L(4, 6, 8, 8), L(1, 30, 30, 30, 1),
            "CIFAR-10 conv-TT-fc net 1536->512"),

    // CIFAR-10 TT-conv layers, ranks 16 (TT-conv-fc nets)
    CONV_CASE("cifar_conv1.2_r16", PAPER, 3, M64, M64, L(16, 16, 16, 1), 32, "64->64 at 32x32"),
    CONV_CASE("cifar_conv2.1_r16", PAPER, 3, M128, M64, L(16, 16, 16, 1), 16, "64->128 at 16x16"),
    CONV_CASE("cifar_conv2.2_r16", BOTH, 3, M128, M128, L(16, 16, 16, 1), 16, "128->128 at 16x16"),
    CONV_CASE("cifar_conv3.1_r16", BOTH, 3, M128, M128, L(16, 16, 16, 1), 8, "128->128 at 8x8"),
    CONV_CASE("cifar_conv3.2_r16", PAPER, 3, M128, M128, L(16, 16, 16, 1), 8, "128->128 at 8x8"),

    // The same layers with the TT-conv net's ranks: [22,20,20,1], [27,22,22,1], then [23,23,23,1]
    CONV_CASE("cifar_conv1.2_ttnet", PAPER, 3, M64, M64, L(22, 20, 20, 1), 32, "TT-conv net ranks"),
    CONV_CASE("cifar_conv2.1_ttnet", PAPER, 3, M128, M64, L(27, 22, 22, 1), 16, "TT-conv net ranks"),
    CONV_CASE("cifar_conv2.2_ttnet", PAPER, 3, M128, M128, L(23, 23, 23, 1), 16, "TT-conv net ranks"),
    CONV_CASE("cifar_conv3.1_ttnet", PAPER, 3, M128, M128, L(23, 23, 23, 1), 8, "TT-conv net ranks"),
    CONV_CASE("cifar_conv3.2_ttnet", PAPER, 3, M128, M128, L(23, 23, 23, 1), 8, "TT-conv net ranks"),

    // The paper's naive TT-conv: a 4-D TT of [kh, kw, C, S], spatial cores merged (r_0 = 9), ~1.8x per layer
    CONV_CASE("cifar_conv1.2_naive", PAPER, 2, L(1, 64), L(64, 1), L(9, 32, 1), 32, "naive 4-D TT, 64->64"),
    CONV_CASE("cifar_conv2.2_naive", PAPER, 2, L(1, 128), L(128, 1), L(9, 64, 1), 16, "naive 4-D TT, 128->128"),

    // VGG-size convolutions (issue 4 targets at 14x14, batch 128)
    CONV_CASE("vgg_conv5_512_r4", PAPER, 3, M512, M512, L(4, 4, 4, 1), 14, "512->512 at 14x14"),
    CONV_CASE("vgg_conv5_512_r8", PAPER, 3, M512, M512, L(8, 8, 8, 1), 14, "512->512 at 14x14"),
    CONV_CASE("vgg_conv5_512_r16", PAPER, 3, M512, M512, L(16, 16, 16, 1), 14, "512->512 at 14x14"),
    CONV_CASE("vgg_conv4_512_r16", PAPER, 3, M512, M512, L(16, 16, 16, 1), 28, "512->512 at 28x28"),
    CONV_CASE("vgg_conv3_256_r8", PAPER, 3, L(4, 8, 8), L(4, 8, 8), L(8, 8, 8, 1), 28, "256->256 at 28x28"),
};

// ---- lookup -----------------------------------------------------------------------------------------------------

const bench_case_t *bench_cases(int *count) {
    *count = (int)(sizeof k_cases / sizeof k_cases[0]);
    return k_cases;
}

int bench_suite_flag(const char *name) {
    if (strcmp(name, "quick") == 0) return BENCH_SUITE_QUICK;
    if (strcmp(name, "paper") == 0) return BENCH_SUITE_PAPER;
    return 0;
}

int bench_case_selected(const bench_case_t *c, int suite_flag, const char *const *patterns, int num_patterns) {
    if (num_patterns == 0) return (c->suites & suite_flag) != 0;
    for (int i = 0; i < num_patterns; ++i)
        if (strncmp(c->name, patterns[i], strlen(patterns[i])) == 0) return 1;
    return 0;
}

// ---- descriptors ------------------------------------------------------------------------------------------------

void bench_case_fc_desc(ttl_fc_desc_t *desc, const bench_case_t *c) {
    memset(desc, 0, sizeof *desc);
    desc->num_cores = c->num_cores;
    desc->out_features = desc->in_features = 1;
    for (int32_t k = 0; k < c->num_cores; ++k) {
        desc->out_modes[k] = c->out_modes[k];
        desc->in_modes[k] = c->in_modes[k];
        desc->out_features *= c->out_modes[k];
        desc->in_features *= c->in_modes[k];
    }
    for (int32_t k = 0; k <= c->num_cores; ++k) desc->ranks[k] = c->ranks[k];
}

void bench_case_conv_desc(ttl_conv_desc_t *desc, const bench_case_t *c) {
    memset(desc, 0, sizeof *desc);
    desc->num_cores = c->num_cores;
    desc->out_channels = desc->in_channels = 1;
    for (int32_t k = 0; k < c->num_cores; ++k) {
        desc->out_modes[k] = c->out_modes[k];
        desc->in_modes[k] = c->in_modes[k];
        desc->out_channels *= c->out_modes[k];
        desc->in_channels *= c->in_modes[k];
    }
    for (int32_t k = 0; k <= c->num_cores; ++k) desc->ranks[k] = c->ranks[k];
    desc->kernel_h = desc->kernel_w = c->kernel;
    desc->stride_h = desc->stride_w = c->stride;
    desc->pad_h = desc->pad_w = c->pad;
    desc->dilation_h = desc->dilation_w = 1;
}

// ---- text -------------------------------------------------------------------------------------------------------

static int append_list(char *buf, int size, int pos, const int64_t *v, int n) {
    for (int i = 0; i < n && pos < size; ++i)
        pos += snprintf(buf + pos, (size_t)(size - pos), "%s%lld", i ? "," : "", (long long)v[i]);
    return pos < size ? pos : size;
}

void bench_case_shape_text(char *buf, int size, const bench_case_t *c) {
    // Ranks that may differ from 1: FC r_1..r_{d-1}; conv r_0..r_{d-1}. One number when they are all equal.
    const int first = c->op == BENCH_OP_FC ? 1 : 0, count = c->num_cores - first;
    int equal = 1;
    for (int k = first; k < c->num_cores; ++k) equal &= c->ranks[k] == c->ranks[first];
    int pos = 0;
    buf[0] = '\0';
    pos = append_list(buf, size, pos, c->out_modes, c->num_cores);
    if (pos < size) pos += snprintf(buf + pos, (size_t)(size - pos), "x");
    pos = append_list(buf, size, pos, c->in_modes, c->num_cores);
    if (pos < size) pos += snprintf(buf + pos, (size_t)(size - pos), " r");
    append_list(buf, size, pos, c->ranks + first, equal ? 1 : count);
}
