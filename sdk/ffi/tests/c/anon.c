/* A C meter for anonymous readings: derives its secret from fixed test entropy, then either
 *   anon join <issuer key hex> <nonce hex>            prints "join <hex>"
 *   anon read <issuer key hex> <credential hex>       prints "reading <hex>" twice (two periods)
 * for the Rust test to issue and verify. Exit status: 0 on success, 1 on a wrong usage, 2 on an
 * unexpected result code. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bcami.h"

static int expect(const char *what, bcami_anon_result got, bcami_anon_result want) {
    if (got != want) {
        fprintf(stderr, "%s: got %u (%s), want %u\n", what, (unsigned)got,
                bcami_anon_result_text(got), (unsigned)want);
        return 0;
    }
    return 1;
}

static void print_hex(const char *label, const bcami_bytes *bytes) {
    const uint8_t *data = bcami_bytes_data(bytes);
    size_t len = bcami_bytes_len(bytes);
    printf("%s ", label);
    for (size_t i = 0; i < len; i++) printf("%02x", data[i]);
    printf("\n");
}

/* Parses hex into a new buffer; returns its length or 0 on error. */
static size_t parse_hex(const char *text, uint8_t **out) {
    size_t n = strlen(text);
    if (n == 0 || n % 2 != 0) return 0;
    *out = malloc(n / 2);
    if (*out == NULL) return 0;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned byte;
        if (sscanf(text + 2 * i, "%2x", &byte) != 1) return 0;
        (*out)[i] = (uint8_t)byte;
    }
    return n / 2;
}

int main(int argc, char **argv) {
    uint8_t *issuer_key = NULL, *arg = NULL;
    size_t issuer_key_len, arg_len;
    if (argc != 4 || (issuer_key_len = parse_hex(argv[2], &issuer_key)) == 0 ||
        (arg_len = parse_hex(argv[3], &arg)) == 0) {
        fprintf(stderr, "usage: %s join|read <issuer key hex> <nonce or credential hex>\n", argv[0]);
        return 1;
    }

    uint8_t entropy[BCAMI_MIN_ENTROPY_LEN];
    memset(entropy, 0x42, sizeof entropy); /* a real meter reads its TRNG */
    uint8_t secret[BCAMI_ANON_SECRET_LEN];
    if (!expect("secret", bcami_anon_secret_from_entropy(entropy, sizeof entropy, secret),
                BCAMI_ANON_RESULT_OK))
        return 2;
    if (!expect("short entropy", bcami_anon_secret_from_entropy(entropy, 16, secret),
                BCAMI_ANON_RESULT_NOT_ENOUGH_ENTROPY))
        return 2;

    if (strcmp(argv[1], "join") == 0) {
        if (arg_len != BCAMI_ANON_NONCE_LEN) return 1;
        uint8_t hid[BCAMI_HID_LEN];
        memset(hid, 0x11, sizeof hid);
        uint8_t join_entropy[BCAMI_ANON_JOIN_ENTROPY_LEN];
        memset(join_entropy, 0x33, sizeof join_entropy);
        bcami_bytes *request = NULL;
        if (!expect("join", bcami_anon_join_request_build(secret, issuer_key, issuer_key_len, hid,
                                                          arg, join_entropy, &request),
                    BCAMI_ANON_RESULT_OK))
            return 2;
        print_hex("join", request);
        bcami_bytes_free(request);
    } else if (strcmp(argv[1], "read") == 0) {
        bcami_anon_meter *meter = NULL;
        /* A corrupted credential is refused. */
        arg[arg_len - 1] ^= 1;
        if (!expect("bad credential",
                    bcami_anon_meter_new(secret, issuer_key, issuer_key_len, arg, arg_len, &meter),
                    BCAMI_ANON_RESULT_INVALID_CREDENTIAL))
            return 2;
        arg[arg_len - 1] ^= 1;
        if (!expect("meter",
                    bcami_anon_meter_new(secret, issuer_key, issuer_key_len, arg, arg_len, &meter),
                    BCAMI_ANON_RESULT_OK))
            return 2;
        bcami_anon_report report = {
            .period_start_ms = 1700000000000ULL, .period_length_s = 1800, .energy_wh = 412, .flags = 1};
        uint8_t reading_entropy[BCAMI_ANON_READING_ENTROPY_LEN];
        for (int i = 0; i < 2; i++) {
            memset(reading_entropy, 0x70 + i, sizeof reading_entropy);
            bcami_bytes *reading = NULL;
            if (!expect("reading", bcami_anon_reading_build(meter, &report, reading_entropy, &reading),
                        BCAMI_ANON_RESULT_OK))
                return 2;
            if (bcami_bytes_len(reading) != BCAMI_ANON_READING_LEN) return 2;
            print_hex("reading", reading);
            bcami_bytes_free(reading);
            report.period_start_ms += 1800000ULL;
        }
        report.period_length_s = 0;
        bcami_bytes *none = NULL;
        if (!expect("zero period", bcami_anon_reading_build(meter, &report, reading_entropy, &none),
                    BCAMI_ANON_RESULT_INVALID_REPORT))
            return 2;
        bcami_anon_meter_free(meter);
    } else {
        return 1;
    }
    free(issuer_key);
    free(arg);
    return 0;
}
