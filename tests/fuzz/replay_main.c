/* SPDX-License-Identifier: Apache-2.0 */
/*
 * replay_main.c - runs a fuzz target over every file of its committed corpus
 * so that `make check` replays the corpora with the normal compiler (and,
 * in the sanitizer build, under ASan/UBSan).  Long fuzzing runs use the
 * libFuzzer build instead (meson -Dfuzz=true with clang).
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/fileio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
main(int argc, char **argv)
{
    int n = 0;

    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    DIR *d = opendir(argv[1]);
    if (d == NULL) {
        perror(argv[1]);
        return 2;
    }
    printf("TAP version 13\n");
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char path[4096];
        uint8_t *data = NULL;
        size_t len = 0;
        struct duet_err err;

        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", argv[1], e->d_name);
        if (fileio_read(path, &data, &len, &err) != 0) {
            /* An empty corpus entry is a valid input too. */
            LLVMFuzzerTestOneInput((const uint8_t *)"", 0);
        } else {
            LLVMFuzzerTestOneInput(data, len);
            free(data);
        }
        printf("ok %d - %s\n", ++n, e->d_name);
    }
    closedir(d);
    printf("1..%d\n", n);
    return 0;
}
