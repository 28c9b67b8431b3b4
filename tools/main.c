/*
 * ttl: compress dense PyTorch weights (safetensors) into TT layers, inspect TT model files, verify them.
 *   ttl compress IN OUT [options]   ttl info FILE [--json]   ttl verify DENSE TT [--json]
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *out) {
    fprintf(out, "usage: ttl <command> [options]\n"
                 "\n"
                 "Tensor-train (TT) model files in safetensors format.\n"
                 "\n"
                 "commands:\n"
                 "  compress IN OUT   compress Linear and Conv2d weights of IN into TT layers, write OUT\n"
                 "  info FILE         list the TT layers of FILE: modes, ranks, parameters, multiply-adds\n"
                 "  verify DENSE TT   reconstruction error of every TT layer against the dense weights\n"
                 "\n"
                 "'ttl <command> --help' describes each command. 'ttl --version' prints the library version.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return CLI_OK;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("ttl %s\n", ttl_version());
        return CLI_OK;
    }
    cli_command = cmd;
    if (strcmp(cmd, "compress") == 0) return cmd_compress(argc - 1, argv + 1);
    if (strcmp(cmd, "info") == 0) return cmd_info(argc - 1, argv + 1);
    if (strcmp(cmd, "verify") == 0) return cmd_verify(argc - 1, argv + 1);
    cli_command = NULL;
    return cli_usage_error("unknown command '%s' (try 'ttl --help')", cmd);
}
