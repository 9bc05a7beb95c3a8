/* W6 reference: OpenBLAS cblas_sgemm called directly (see shared/WORKLOADS.md).
 *
 *   gcc -O2 bench/sgemm_openblas.c -lopenblas -o build/bench/sgemm_openblas
 *   build/bench/sgemm_openblas --n 1024 --threads 1 [--quick]
 *
 * C = A·B, n×n float32, row-major, A and B ~ N(0,1) from a fixed seed (0).
 * Timing rules as in bench/torch/workloads.py: warm-up, then >= 20
 * iterations and >= 2 s (slow: warm-up >= 1 s -> >= 5 iterations or 30 s;
 * --quick: 3 iterations and 0.2 s).  Prints one JSON line.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cblas.h>

void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
char *openblas_get_config(void);

static double wall_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static long vm_hwm_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0) { v = strtol(line + 6, NULL, 10); break; }
    fclose(f);
    return v;
}

/* splitmix64 + Box-Muller: deterministic N(0,1) from seed 0 */
static uint64_t rng_state = 0;
static uint64_t splitmix64(void) {
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
static double uniform01(void) { return ((splitmix64() >> 11) + 0.5) * (1.0 / 9007199254740992.0); }
static void fill_randn(float *p, size_t n) {
    for (size_t i = 0; i < n; i += 2) {
        double u1 = uniform01(), u2 = uniform01();
        double r = sqrt(-2.0 * log(u1));
        p[i] = (float)(r * cos(2.0 * M_PI * u2));
        if (i + 1 < n) p[i + 1] = (float)(r * sin(2.0 * M_PI * u2));
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int n = 1024, threads = 1, quick = 0, min_iters = -1;
    double min_time = -1.0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--n") && i + 1 < argc) n = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--min-iters") && i + 1 < argc) min_iters = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--min-time") && i + 1 < argc) min_time = atof(argv[++i]);
        else { fprintf(stderr, "usage: %s --n N --threads T [--quick]\n", argv[0]); return 2; }
    }
    openblas_set_num_threads(threads);

    size_t nn = (size_t)n * n;
    float *A = malloc(nn * sizeof *A), *B = malloc(nn * sizeof *B), *C = malloc(nn * sizeof *C);
    if (!A || !B || !C) { fprintf(stderr, "out of memory\n"); return 1; }
    rng_state = 0;
    fill_randn(A, nn);
    fill_randn(B, nn);
    memset(C, 0, nn * sizeof *C);

    /* warm-up */
    double w0 = wall_now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, A, n, B, n, 0.0f, C, n);
    double wt = wall_now() - w0;
    int slow = wt >= 1.0;
    int n_min; double t_min; int mode_and;
    if (quick) { if (slow) { n_min = 1; t_min = 0.0; mode_and = 0; } else { n_min = 3; t_min = 0.2; mode_and = 1; } }
    else       { if (slow) { n_min = 5; t_min = 30.0; mode_and = 0; } else { n_min = 20; t_min = 2.0; mode_and = 1; } }
    if (min_iters >= 0) n_min = min_iters;
    if (min_time >= 0) t_min = min_time;

    size_t cap = 1024, k = 0;
    double *times = malloc(cap * sizeof *times);
    double cpu0 = cpu_now(), start = wall_now();
    for (;;) {
        double t0 = wall_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, A, n, B, n, 0.0f, C, n);
        double t1 = wall_now();
        if (k == cap) { cap *= 2; times = realloc(times, cap * sizeof *times); }
        times[k++] = t1 - t0;
        double el = t1 - start;
        if (mode_and ? ((int)k >= n_min && el >= t_min) : ((int)k >= n_min || el >= t_min)) break;
    }
    double cpu_s = cpu_now() - cpu0, wall = wall_now() - start;
    qsort(times, k, sizeof *times, cmp_double);
    double median = (k % 2) ? times[k / 2] : 0.5 * (times[k / 2 - 1] + times[k / 2]);
    double flop = 2.0 * (double)n * n * n;
    /* checksum keeps the products observable */
    double cs = 0; for (size_t i = 0; i < nn; i += 4099) cs += C[i];
    const char *cfg = openblas_get_config();
    printf("{\"workload\": \"W6_%d\", \"impl\": \"openblas\", \"threads\": %d, "
           "\"median_s\": %.9g, \"min_s\": %.9g, \"iters\": %zu, \"peak_rss_kb\": %ld, "
           "\"cpu_s\": %.9g, \"wall_s\": %.9g, \"slow_rule\": %s, \"warmup_s\": %.9g, "
           "\"n\": %d, \"gflops\": %.6g, \"gflops_best\": %.6g, \"openblas_threads\": %d, "
           "\"openblas_config\": \"%s\", \"checksum\": %.6g}\n",
           n, threads, median, times[0], k, vm_hwm_kb(), cpu_s, wall, slow ? "true" : "false", wt,
           n, flop / median / 1e9, flop / times[0] / 1e9, openblas_get_num_threads(),
           cfg ? cfg : "", cs);
    free(times); free(A); free(B); free(C);
    return 0;
}
